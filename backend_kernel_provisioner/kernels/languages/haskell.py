"""Haskell: one persistent GHCi; definitions and imports last between cells."""

from __future__ import annotations

import re

from backend_kernel_provisioner.common.languages import LANGUAGES
from backend_kernel_provisioner.kernels.session import SessionKernel

HASKELL_KEYWORDS = (
    "case class data default deriving do else foreign if import in infix infixl infixr instance let "
    "module newtype of then type where qualified as hiding forall mdo proc rec "
    "putStrLn putStr print getLine getContents readLn read show map filter foldr foldl length "
    "return pure fmap mapM_ Maybe Just Nothing Either Left Right Int Integer Double String Bool True False"
).split()

CHUNK_SEPARATOR = "\x1e"  # a line holding only this separates the chunks handed to the loader
_DECLARATION = re.compile(
    r"^(data|type|newtype|class|instance|infixl?|infixr|default|deriving|pattern)\b"  # keyword declarations
    r"|^[a-z_][\w']*(\s*,\s*[a-z_][\w']*)*\s*::"                                      # type signatures
    r"|^\([^)]*\)\s*::"                                                                # operator signatures
)
_BINDING = re.compile(r"^(?!let\b)(?:(?!<-)[^=])*?(?<![=<>/!:|\\])=(?![=>])", re.S)  # `f x = ...`, `x = 1`
_CONTINUES = re.compile(r"^(\s|where\b|deriving\b|then\b|else\b|in\b|of\b|[|,)\]}]|--)")


def _blocks(code: str) -> list[str]:
    """Top-level blocks: a line starting in column 0 begins one, indented lines continue it."""
    blocks: list[list[str]] = []
    for line in code.splitlines():
        if blocks and (not line.strip() or _CONTINUES.match(line)):
            blocks[-1].append(line)
        elif line.strip():
            blocks.append([line])
    return ["\n".join(block).rstrip() for block in blocks]


def _is_declaration(block: str) -> bool:
    return bool(_DECLARATION.match(block) or (_BINDING.match(block) and not block.startswith(":")))


def ghci_chunks(code: str) -> list[str]:
    """The cell as GHCi inputs: consecutive declarations stay together (a signature with its
    equations, clauses of one function, mutual recursion); statements, expressions, imports and
    ``:commands`` are one each."""
    chunks: list[str] = []
    grouping = False
    for block in _blocks(code):
        declaration = _is_declaration(block)
        if declaration and grouping:
            chunks[-1] += "\n" + block
        else:
            chunks.append(block)
        grouping = declaration
    return chunks


class HaskellKernel(SessionKernel):
    """The Haskell recipe: GHCi runs a chain of loader macros (see ``ghci_loader.ghci``), so its
    stdin stays the program's; each chunk of a cell runs as a ``:{ ... :}`` block. GHCi itself
    stops an evaluation on SIGINT ("Interrupted.") and keeps the bindings."""

    spec = LANGUAGES["haskell"]

    mimetype = "text/x-haskell"
    file_extension = ".hs"
    pygments_lexer = "haskell"
    codemirror_mode = "haskell"
    keywords = tuple(HASKELL_KEYWORDS)
    line_comment = "--"
    block_comment = ("{-", "-}")
    quotes = '"'
    loader = "ghci_loader.ghci"

    def session_argv(self, program: str, loader: str) -> list[str]:
        return [program, "-v0", "-ignore-dot-ghci", "-ghci-script", loader]

    def cell_text(self, code: str) -> str:
        return f"\n{CHUNK_SEPARATOR}\n".join(ghci_chunks(code)) + "\n"


kernel_class = HaskellKernel
