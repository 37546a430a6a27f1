"""C: ``gcc -pipe -Wall main.c -o main -lrt -lm -lpthread -ldl``, then ``./main``."""

from __future__ import annotations

from backend_kernel_provisioner.common.languages import LANGUAGES
from backend_kernel_provisioner.kernels.compiled import Program
from backend_kernel_provisioner.kernels.stdio_prompt import StdioPromptKernel

C_KEYWORDS = (
    "auto break case char const continue default do double else enum extern float for goto if inline "
    "int long register restrict return short signed sizeof static struct switch typedef union unsigned "
    "void volatile while _Bool _Complex include define ifdef ifndef endif pragma "
    "printf scanf fprintf sprintf snprintf puts getchar fgets malloc calloc free exit stdin stdout stderr "
    "main NULL EOF"
).split()


class CKernel(StdioPromptKernel):
    """The C recipe."""

    spec = LANGUAGES["c"]

    mimetype = "text/x-csrc"
    file_extension = ".c"
    pygments_lexer = "c"
    codemirror_mode = "text/x-csrc"
    keywords = tuple(C_KEYWORDS)
    default_flags = "-Wall"
    default_ldflags = "-lrt -lm -lpthread -ldl"

    def build_argv(self, program: Program, compiler: str, flags: list[str], ldflags: list[str]) -> list[str]:
        # -pipe: the stages hand over through pipes, not temporary files (a few ms of a small cell's build)
        return [compiler, "-pipe", *flags, *program.sources, "-o", "main", *ldflags, *self.flush_link_args()]

    def version_argv(self, compiler: str) -> list[str]:
        return [compiler, "-dumpfullversion", "-dumpversion"]


kernel_class = CKernel
