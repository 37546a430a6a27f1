"""Node.js completion ranks public names first (issue 19): ``console.`` offered ``__proto__``,
``_ignoreErrors`` and ``_stderr`` before ``log`` and ``assert``. Public names come first, then ``_``-names,
then ``__``-names, each group alphabetical."""

from __future__ import annotations

import pytest

from .helpers import require_programs, run_cell, running_kernel

pytestmark = pytest.mark.kernel  # every test starts backend-nodejs


def group(match: str) -> int:
    """0 public, 1 ``_name``, 2 ``__name``, by the part after the last dot."""
    name = match.rsplit(".", 1)[-1]
    return 2 if name.startswith("__") else 1 if name.startswith("_") else 0


async def matches_for(kc, code: str) -> list[str]:
    reply = await kc.complete(code, len(code), reply=True, timeout=30)
    assert reply["content"]["status"] == "ok", reply
    return reply["content"]["matches"]


async def test_public_names_come_before_private_and_dunder_ones() -> None:
    require_programs("node")
    async with running_kernel("backend-nodejs") as (_, kc):
        console = await matches_for(kc, "console.")
        for name in ("console.log", "console.assert", "console._stderr", "console.__proto__"):
            assert name in console, console
        assert console.index("console.log") < console.index("console._stderr") < console.index("console.__proto__")
        groups = [group(m) for m in console]
        assert groups == sorted(groups), f"public, then _private, then __dunder: {console}"

        await run_cell(kc, "const thing = {_hidden: 1, __dunder: 2, visible: 3, Alpha: 4, beta: 5}")
        own = [m for m in await matches_for(kc, "thing.")
               if m in {"thing._hidden", "thing.__dunder", "thing.visible", "thing.Alpha", "thing.beta"}]
        assert own == ["thing.Alpha", "thing.beta", "thing.visible", "thing._hidden", "thing.__dunder"], own

        partial = await matches_for(kc, "console.lo")
        assert partial[0] == "console.log", partial
