"""``backend-app``: a kernel for images that only host services.

It runs no code. A cell answers with what the kernel is, which services it
has and how to start them; the magics (``%services``, ``%service start
NAME``, ``%apps``) work as in every backend kernel, and the provisioner runs
the service manager as it does for any kernel.
"""

from __future__ import annotations

from backend_kernel_provisioner.common.languages import LANGUAGES
from backend_kernel_provisioner.kernels.base import BackendKernel, CellResult
from backend_kernel_provisioner.kernels.service_magics import MagicError, apps_magic, services_magic

INTRODUCTION = (
    "This is an app kernel: it hosts services (web apps, terminals, model servers) and runs no code.\n"
)
HOW_TO = (
    "Start one with:   %service start NAME [--port N]\n"
    "Stop it with:     %service stop NAME\n"
    "See its log with: %service log NAME\n"
    "List services:    %services    (definitions: %apps)\n"
)


class AppKernel(BackendKernel):
    """Answers every cell with a description of the kernel's services."""

    spec = LANGUAGES["app"]

    mimetype = "text/plain"
    file_extension = ".txt"
    pygments_lexer = "text"
    codemirror_mode = "text"
    keywords = ("%services", "%service", "%apps", "start", "stop", "status", "log")

    def detect_version(self) -> str:
        return "-"

    async def execute_code(self, code: str) -> CellResult:
        self.stream("stdout", INTRODUCTION + "\n" + self._overview() + "\n" + HOW_TO)
        return CellResult()

    def _overview(self) -> str:
        try:
            return f"Apps:\n{apps_magic()}\n\nServices:\n{services_magic()}\n"
        except MagicError as exc:
            return f"(the service manager cannot be reached: {exc})\n"


kernel_class = AppKernel
