"""Julia: one persistent ``julia`` session driven by a loader. It does not need IJulia; where IJulia is
installed too, its ``julia-*`` kernelspec stays available beside ``backend-julia``."""

from __future__ import annotations

from backend_kernel_provisioner.common.languages import LANGUAGES
from backend_kernel_provisioner.kernels.session import SessionKernel

JULIA_KEYWORDS = (
    "baremodule begin break catch const continue do else elseif end export false finally for function "
    "global if import let local macro module quote return struct true try using while mutable abstract "
    "primitive type where println print readline parse string length push! map filter collect"
).split()


class JuliaKernel(SessionKernel):
    """The Julia recipe: cells are ``include_string``'d into ``Main``; the last value is shown;
    SIGINT raises ``InterruptException`` in the cell; completion is the REPL's completer."""

    spec = LANGUAGES["julia"]

    mimetype = "application/julia"
    file_extension = ".jl"
    pygments_lexer = "julia"
    codemirror_mode = "julia"
    keywords = tuple(JULIA_KEYWORDS)
    line_comment = "#"
    block_comment = ("#=", "=#")
    quotes = '"'
    loader = "julia_loader.jl"

    def session_argv(self, program: str, loader: str) -> list[str]:
        return [program, "--startup-file=no", "--history-file=no", "--color=no", "--banner=no", loader]


kernel_class = JuliaKernel
