"""PHP: one persistent ``php`` process; each cell is eval()'d at global scope (no ``<?php`` needed)."""

from __future__ import annotations

import re

from backend_kernel_provisioner.common.languages import LANGUAGES
from backend_kernel_provisioner.kernels.session import SessionKernel

PHP_KEYWORDS = (
    "abstract and array as break callable case catch class clone const continue declare default do echo "
    "else elseif empty enum extends final finally fn for foreach function global if implements include "
    "instanceof interface isset list match namespace new null or print private protected public readonly "
    "require return static switch throw trait try unset use var while yield true false "
    "strlen count implode explode printf sprintf var_dump print_r json_encode fgets STDIN"
).split()

_OPEN_TAG = re.compile(r"\A\s*<\?php\b")


class PhpKernel(SessionKernel):
    """The PHP recipe: warnings go to stderr, errors are catchable Throwables reported per cell."""

    spec = LANGUAGES["php"]

    mimetype = "application/x-httpd-php"
    file_extension = ".php"
    pygments_lexer = "php"
    codemirror_mode = "php"
    keywords = tuple(PHP_KEYWORDS)
    loader = "php_loader.php"

    def session_argv(self, program: str, loader: str) -> list[str]:
        return [program, "-d", "display_errors=stderr", "-d", "log_errors=0", "-d", "html_errors=0",
                "-d", "error_reporting=E_ALL", "-d", "output_buffering=0", "-d", "implicit_flush=1", loader]

    def cell_text(self, code: str) -> str:
        """Without a leading ``<?php`` (and a trailing ``?>``), which eval() would not accept."""
        code = _OPEN_TAG.sub(lambda m: " " * len(m.group(0)), code, count=1)
        stripped = code.rstrip()
        return stripped[:-2] if stripped.endswith("?>") else code


kernel_class = PhpKernel
