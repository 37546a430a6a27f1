"""R: one persistent ``R --interactive`` session driven by a loader. It does not need IRkernel; where IRkernel
is installed too, its ``ir`` kernelspec stays available beside ``backend-r``."""

from __future__ import annotations

from typing import ClassVar

from backend_kernel_provisioner.common.languages import LANGUAGES
from backend_kernel_provisioner.kernels.session import SessionKernel

R_KEYWORDS = (
    "if else repeat while function for in next break TRUE FALSE NULL Inf NaN NA NA_integer_ NA_real_ "
    "NA_character_ library require return invisible print cat paste paste0 c list data.frame matrix "
    "vector length names seq_along lapply sapply vapply readline readLines stop warning tryCatch sum mean"
).split()


class RLanguage:
    """What Jupyter is told about R, shared by the local and the remote R kernels."""

    mimetype = "text/x-r-source"
    file_extension = ".r"
    pygments_lexer = "r"
    codemirror_mode = "r"
    keywords = tuple(R_KEYWORDS)
    line_comment = "#"
    block_comment: ClassVar[tuple[str, str] | None] = None
    quotes = "\"'`"


class RKernel(RLanguage, SessionKernel):
    """The R recipe. The loader is R's user profile, so R's console (``readline()``) is the user's
    stdin; the last visible value is the cell's result (a data frame or matrix also as an HTML table); plots
    come back as PNG ``display_data`` where they were drawn, ``display()`` sends rich output (r_display.R);
    completion is R's own completer (``utils:::.completeToken``).

    Interrupt: SIGINT, plus the session's flag file. R only acts on SIGINT at its next interrupt
    check, and ``system()`` ignores it while it waits; the loader checks both right after every
    blocking call it wraps (``readline``, ``system``, ``system2``) and at the cell's end."""

    spec = LANGUAGES["r"]
    interrupt_by_flag = True

    loader = "r_loader.R"

    def session_argv(self, program: str, loader: str) -> list[str]:
        # env(1) execs R with the loader as its user profile (only this session, not batch Rscript runs).
        return ["env", f"R_PROFILE_USER={loader}", program, "--no-save", "--no-restore", "--no-site-file",
                "--no-environ", "--quiet", "--no-echo", "--interactive", "--no-readline"]


kernel_class = RKernel
