"""Scheme (GNU Guile 3): one persistent ``guile``; definitions last between cells."""

from __future__ import annotations

from backend_kernel_provisioner.common.languages import LANGUAGES
from backend_kernel_provisioner.kernels.session import SessionKernel

SCHEME_KEYWORDS = (
    "define define-syntax define-record-type lambda let let* letrec letrec* let-values if cond case "
    "when unless begin do and or not set! quote quasiquote unquote syntax-rules call-with-current-continuation "
    "call/cc dynamic-wind values call-with-values display newline write read-line car cdr cons list "
    "append map for-each filter apply vector string-append number->string string->number"
).split()


class SchemeKernel(SessionKernel):
    """The Scheme recipe: each form is evaluated in one fresh user module; the last value is shown.
    ``(read-line)`` reads standard input (served by ``input_request``); SIGINT stops the cell.

    Interrupt: SIGINT, plus the session's flag file. ``system`` and ``system*`` ignore SIGINT while
    they wait, so the loader's versions check the flag when the command returns."""

    spec = LANGUAGES["scheme"]
    interrupt_by_flag = True

    mimetype = "text/x-scheme"
    file_extension = ".scm"
    pygments_lexer = "scheme"
    codemirror_mode = "scheme"
    keywords = tuple(SCHEME_KEYWORDS)
    line_comment = ";"
    block_comment = ("#|", "|#")
    quotes = '"'
    loader = "guile_loader.scm"

    def session_argv(self, program: str, loader: str) -> list[str]:
        return [program, "--no-auto-compile", "-q", loader]


kernel_class = SchemeKernel
