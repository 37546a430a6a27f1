"""Go: ``go build -o main main.go`` (Go's own build cache is reused across cells), then ``./main``."""

from __future__ import annotations

import os

from backend_kernel_provisioner.common.languages import LANGUAGES
from backend_kernel_provisioner.kernels.compiled import CompiledKernel, Program

GO_KEYWORDS = (
    "break case chan const continue default defer else fallthrough for func go goto if import interface "
    "map package range return select struct switch type var bool byte int int64 float64 string error "
    "rune nil true false make len cap append panic recover fmt Println Printf Sprintf bufio os main"
).split()


class GoKernel(CompiledKernel):
    """The Go recipe."""

    spec = LANGUAGES["go"]

    mimetype = "text/x-go"
    file_extension = ".go"
    pygments_lexer = "go"
    codemirror_mode = "go"
    keywords = tuple(GO_KEYWORDS)
    quotes = "\"'`"

    def build_argv(self, program: Program, compiler: str, flags: list[str], ldflags: list[str]) -> list[str]:
        linker = ["-ldflags", " ".join(ldflags)] if ldflags else []
        return [compiler, "build", *flags, *linker, "-o", "main", *program.sources]

    def child_env(self) -> dict[str, str]:
        env = super().child_env()
        # A file outside any module builds in GOPATH mode; without HOME go needs an explicit cache.
        env.setdefault("GO111MODULE", "auto")
        if not env.get("GOCACHE") and not env.get("HOME"):
            env["GOCACHE"] = os.path.join(self.work_dir, "go-build")
        return env

    def version_argv(self, compiler: str) -> list[str]:
        return [compiler, "env", "GOVERSION"]

    def parse_version(self, output: str) -> str:
        return output.strip().removeprefix("go")


kernel_class = GoKernel
