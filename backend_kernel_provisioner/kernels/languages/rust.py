"""Rust: ``rustc -o main main.rs``, then ``./main``."""

from __future__ import annotations

from backend_kernel_provisioner.common.languages import LANGUAGES
from backend_kernel_provisioner.kernels.compiled import CompiledKernel, Program

RUST_KEYWORDS = (
    "as break const continue crate else enum extern false fn for if impl in let loop match mod move mut "
    "pub ref return self Self static struct super trait true type unsafe use where while async await dyn "
    "String Vec Option Some None Result Ok Err Box println print eprintln format io std main"
).split()


class RustKernel(CompiledKernel):
    """The Rust recipe."""

    spec = LANGUAGES["rust"]

    mimetype = "text/rust"
    file_extension = ".rs"
    pygments_lexer = "rust"
    codemirror_mode = "rust"
    keywords = tuple(RUST_KEYWORDS)
    quotes = '"'  # 'a is a lifetime, not a string

    def build_argv(self, program: Program, compiler: str, flags: list[str], ldflags: list[str]) -> list[str]:
        linker = [f"-Clink-arg={flag}" for flag in ldflags]
        return [compiler, *flags, *linker, "-o", "main", *program.sources]

    def parse_version(self, output: str) -> str:
        return output.split()[1] if len(output.split()) > 1 else ""


kernel_class = RustKernel
