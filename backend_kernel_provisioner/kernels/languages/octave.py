"""Octave: one persistent ``octave-cli`` session; variables and command-line functions last,
plots come back as PNG ``display_data``."""

from __future__ import annotations

from pathlib import Path

from backend_kernel_provisioner.common.languages import LANGUAGES
from backend_kernel_provisioner.kernels.figures import FiguresAfterCells
from backend_kernel_provisioner.kernels.session import SessionKernel

OCTAVE_KEYWORDS = (
    "if elseif else end endif for endfor while endwhile do until switch case otherwise endswitch "
    "function endfunction return break continue try catch end_try_catch unwind_protect "
    "unwind_protect_cleanup end_unwind_protect global persistent disp printf fprintf sprintf input "
    "plot figure hold zeros ones eye rand linspace numel size length true false"
).split()


class OctaveKernel(FiguresAfterCells, SessionKernel):
    """The Octave recipe: cells are ``evalin('base', ...)``'d by the loader function; values show
    as Octave prints them (``x = 1``); ``input('', 's')`` reads stdin; completion is Octave's
    ``completion_matches``; figures are printed to PNG (gnuplot toolkit) after each cell.

    Interrupt: SIGINT, plus the session's flag file. ``system()`` ignores SIGINT while it waits, so
    the loader's ``system`` checks the flag when the command returns and raises the interrupt."""

    spec = LANGUAGES["octave"]
    interrupt_by_flag = True
    loader_reopens_cells = True  # each request is read by a shell's `read < cells`

    mimetype = "text/x-octave"
    file_extension = ".m"
    pygments_lexer = "octave"
    codemirror_mode = "octave"
    keywords = tuple(OCTAVE_KEYWORDS)
    line_comment = "%"
    block_comment = ("%{", "%}")
    quotes = '"'
    loader = "octave_loader.m"

    def session_argv(self, program: str, loader: str) -> list[str]:
        folder = str(Path(loader).parent).replace("'", "''")
        return [program, "--no-gui", "--quiet", "--norc", "--no-history", "--no-line-editing",
                "--eval", f"addpath('{folder}'); {Path(loader).stem}()"]


kernel_class = OctaveKernel
