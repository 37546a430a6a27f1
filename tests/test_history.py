"""history_request from each kernel's own record of its cells: tail, range and search (issue 19).

Our kernels keep the cells of their life in memory (``kernels/history.py``); backend-python answers from
IPython's own history. The jupyter_kernel_test classes run the library's history test on every kernel;
these check what it does not: numbering by execution count, silent and unstored cells left out, the
``execute_result`` as the output, and the glob search.
"""

from __future__ import annotations

import pytest

from backend_kernel_provisioner.kernels.history import SESSION, Entry, select

from .helpers import require_programs, run_cell, running_kernel

ENTRIES = [Entry(1, "x = 1"), Entry(2, "print(x)", None), Entry(3, "x = 1"), Entry(4, "y = 2", "2")]


def lines(entries: list[Entry]) -> list[int]:
    return [e.line for e in entries]


def test_tail_range_and_search() -> None:
    assert lines(select(ENTRIES, "tail", n=2)) == [3, 4]
    assert lines(select(ENTRIES, "tail", n=0)) == []
    assert lines(select(ENTRIES, "tail")) == [1, 2, 3, 4]
    assert lines(select(ENTRIES, "range", session=SESSION, start=2, stop=4)) == [2, 3]
    assert lines(select(ENTRIES, "range", session=0, start=3)) == [3, 4]
    assert lines(select(ENTRIES, "range", session=-1, start=1)) == [], "no session before this one"
    assert lines(select(ENTRIES, "search", pattern="x = *")) == [1, 3]
    assert lines(select(ENTRIES, "search", pattern="x = *", unique=True)) == [3]
    assert lines(select(ENTRIES, "search", pattern="*", n=2)) == [3, 4]
    assert lines(select(ENTRIES, "search", pattern="X*")) == [], "the glob is case-sensitive, as SQLite's GLOB"
    assert select(ENTRIES, "nonsense") == []


async def history(kc, **request) -> list:
    msg_id = kc.history(**request)
    while True:
        reply = await kc.get_shell_msg(timeout=30)
        if reply["parent_header"].get("msg_id") == msg_id:
            assert reply["content"]["status"] == "ok", reply
            return [tuple(item) for item in reply["content"]["history"]]


#: kernel: (programs, cells run and stored, a cell with an execute_result and its text, a cell run silently)
KERNELS = {
    "lua": (("lua5.4",), ["x = 40", "print(x + 2)"], ("6 * 7", "42"), "y = 1"),
    "c": (("gcc",), ['#include <stdio.h>\nint main(void) { puts("hi"); }'], None,
          "int main(void) { return 0; }"),
    "shell": (("bash",), ["x=40", "echo $((x + 2))"], None, "y=1"),
}


@pytest.mark.kernel
@pytest.mark.parametrize("language", sorted(KERNELS))
async def test_the_kernel_answers_from_its_cells(language: str) -> None:
    programs, cells, with_result, silent = KERNELS[language]
    require_programs(*programs)
    async with running_kernel(f"backend-{language}") as (_, kc):
        counts = []
        for cell in cells + ([with_result[0]] if with_result else []):
            out = await run_cell(kc, cell)
            assert out["reply"]["status"] == "ok", out
            counts.append(out["reply"]["execution_count"])
        await kc.execute_interactive(silent, silent=True, timeout=60)
        unstored = await kc.execute_interactive(cells[0] + "\n", store_history=False, timeout=60)
        assert unstored["content"]["status"] == "ok"
        stored = cells + ([with_result[0]] if with_result else [])

        tail = await history(kc, hist_access_type="tail", n=len(stored), output=False, raw=True)
        assert tail == [(SESSION, count, code) for count, code in zip(counts, stored, strict=True)]
        first = await history(kc, hist_access_type="range", session=0, start=counts[0], stop=counts[0] + 1,
                              output=False, raw=True)
        assert first == [(SESSION, counts[0], cells[0])]
        found = await history(kc, hist_access_type="search", pattern=f"{cells[0][:3]}*", output=False, raw=True)
        assert found == [(SESSION, counts[0], cells[0])], "neither the silent nor the unstored cell is recorded"
        if with_result:
            last = await history(kc, hist_access_type="tail", n=1, output=True, raw=True)
            assert last == [(SESSION, counts[-1], [with_result[0], with_result[1]])]


@pytest.mark.kernel
async def test_backend_python_answers_tail_and_search() -> None:
    require_programs("python3")
    async with running_kernel("backend-python") as (_, kc):
        for cell in ("a_history_probe = 1", "a_history_probe + 1"):
            assert (await run_cell(kc, cell))["reply"]["status"] == "ok"
        tail = await history(kc, hist_access_type="tail", n=2, output=False, raw=True)
        assert [item[2] for item in tail] == ["a_history_probe = 1", "a_history_probe + 1"]
        found = await history(kc, hist_access_type="search", pattern="a_history_probe =*", output=False, raw=True)
        assert [item[2] for item in found][-1:] == ["a_history_probe = 1"]
