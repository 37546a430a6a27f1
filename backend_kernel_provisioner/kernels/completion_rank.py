"""Completion matches in the order a user looks for them: public names first, then ``_private`` ones, then
``__dunder__`` ones.

Why: sorted by code point, ``_`` comes before every lower-case letter, so completing ``console.`` in
Node.js listed ``__proto__``, ``_ignoreErrors`` and ``_stderr`` before ``log`` and ``assert``. Within each
group the order stays alphabetical. Only the last part of a dotted match counts (``console._stderr`` is
private, ``_G.print`` is not); ``$`` belongs to a name (PHP's ``$_SERVER`` and a shell's ``$HOME`` are public).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_SEPARATORS = re.compile(r"[^\w$]")


def privacy(match: str) -> int:
    """0 for a public name, 1 for ``_name``, 2 for ``__name``, judged by the match's last part."""
    name = _SEPARATORS.split(match)[-1]
    return 2 if name.startswith("__") else 1 if name.startswith("_") else 0


def rank(matches: Iterable[str]) -> list[str]:
    """The distinct matches, public ones first, each group alphabetical."""
    return sorted(set(matches), key=lambda match: (privacy(match), match))
