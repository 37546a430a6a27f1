"""Node.js: one persistent Node process; cells go through the REPL's evaluator (state lasts)."""

from __future__ import annotations

from backend_kernel_provisioner.common.languages import LANGUAGES
from backend_kernel_provisioner.kernels.session import SessionKernel

JS_KEYWORDS = (
    "async await break case catch class const continue debugger default delete do else export extends "
    "false finally for function if import in instanceof let new null return super switch this throw true "
    "try typeof undefined var void while with yield require module console process Promise JSON Math "
    "Object Array String Number Boolean Map Set Symbol Buffer setTimeout setInterval input"
).split()


class NodeKernel(SessionKernel):
    """The Node.js recipe; ``input(prompt)`` reads one line of stdin synchronously, and a cell ends once the
    timers and stdin readers it started are done (see node_loader.js), as a script would."""

    spec = LANGUAGES["nodejs"]

    mimetype = "application/javascript"
    file_extension = ".js"
    pygments_lexer = "javascript"
    codemirror_mode = "javascript"
    keywords = tuple(JS_KEYWORDS)
    quotes = "\"'`"
    loader = "node_loader.js"


kernel_class = NodeKernel
