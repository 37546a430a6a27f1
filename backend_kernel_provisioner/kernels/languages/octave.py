"""Octave: one persistent ``octave-cli`` session; variables and command-line functions last,
plots come back as PNG ``display_data``."""

from __future__ import annotations

from pathlib import Path

from backend_kernel_provisioner.common.languages import LANGUAGES
from backend_kernel_provisioner.kernels import octave_value
from backend_kernel_provisioner.kernels.session import SessionKernel

OCTAVE_KEYWORDS = (
    "if elseif else end endif for endfor while endwhile do until switch case otherwise endswitch "
    "function endfunction return break continue try catch end_try_catch unwind_protect "
    "unwind_protect_cleanup end_unwind_protect global persistent disp printf fprintf sprintf input "
    "plot figure hold zeros ones eye rand linspace numel size length true false"
).split()


class OctaveKernel(SessionKernel):
    """The Octave recipe: cells are ``evalin('base', ...)``'d by the loader function; values show
    as Octave prints them (``x = 1``), a bare expression on the cell's last line as its result
    (``kernels/octave_value.py``); ``input('', 's')`` reads stdin; completion is Octave's
    ``completion_matches``; figures are printed to PNG (gnuplot toolkit) and sent as displays after each
    cell; ``display_html()`` and the others send rich output.

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

    def cell_text(self, code: str) -> str:
        return octave_value.cell_text(code)


kernel_class = OctaveKernel
