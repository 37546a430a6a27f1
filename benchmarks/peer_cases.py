"""Our kernels against the kernels a user would install instead: interleaved lives, rows with targets.

For every pair the lives alternate (ours, the peer's, ours, …) so that a change
of machine load falls on both sides alike. The rows carry the issue's targets:
trivial cell, printed lines and interrupt ≤ 1.0× the peer; start ≤ 1.0× the
peer, or within 10% of ipykernel's start where the peer starts faster than any
ipykernel-based kernel can; every interrupt ≤ 200 ms. Targets that are not
about a pair (C's first run and re-run, 50 MB of output, backend-python's start,
Node.js's memory, the interrupts of our kernels without a peer here) follow in
a second table.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass

import cases
from measure import Samples
from peer_life import LIFE_ENDED, Life, interrupt_life, one_life
from peer_report import Behaviour, PeerRow, PeerTable, missing_row
from peer_setup import Peer
from peers import IPYKERNEL, PAIRS, SOLOS, Pair

INTERRUPT_TARGET = 0.200  # seconds, every kernel (issue 21)


@dataclass
class PeerSettings:
    rounds: int           # lives of each side of a pair (interleaved)
    lines: int            # the "printed lines" cell
    trivial_repeats: int  # trivial cells per life
    c_repeats: int        # C first run, re-run, streamed output (cases.py's rows)
    stream_mb: int


QUICK = PeerSettings(rounds=1, lines=1000, trivial_repeats=3, c_repeats=2, stream_mb=5)
FULL = PeerSettings(rounds=5, lines=10_000, trivial_repeats=10, c_repeats=7, stream_mb=50)


def _samples(lives: list[Life], pick: Callable[[Life], object], unit: str = "s") -> Samples:
    values: list[float] = []
    for life in lives:
        found = pick(life)
        if isinstance(found, list):
            values.extend(found)
        elif isinstance(found, (int, float)):
            values.append(float(found))
    return Samples(values, unit=unit)


def _why_fewer(lives: list[Life], count: int, side: str, step: str) -> str:
    """Why a side measured something in fewer lives than it had: the problems of that step, counted."""
    if count >= len(lives):
        return ""
    problems: dict[str, int] = {}
    for life in lives:
        for problem in life.problems:
            if problem.startswith((step, LIFE_ENDED)):
                problems[problem] = problems.get(problem, 0) + 1
    said = "; ".join(f"{text} ({times} of {len(lives)} lives)" for text, times in problems.items())
    return f"{side}: {said or 'not measured'}"


def _failures(kernel: str, lives: list[Life]) -> list[str]:
    """Our lives that ended early (a start or a first cell failed): the run fails. A step of ours that did
    not answer (an interrupt) is a finding, shown in its row's note like a peer's."""
    return [f"{kernel}: {problem}" for life in lives for problem in life.problems if problem.startswith(LIFE_ENDED)]


def _ratio_met(ours: Samples, peer: Samples) -> str:
    if not ours.values:
        return "no (ours not measured)"
    if not peer.values:
        return "—"
    ratio = ours.median / peer.median
    return "yes" if ratio <= 1.0 else f"no ({ratio:.2f}×)"


def _start_met(ours: Samples, peer: Samples, ipy: Samples | None) -> str:
    """≤ 1.0× the peer, or within 10% of ipykernel's where the peer starts faster than ipykernel can."""
    met = _ratio_met(ours, peer)
    if not met.startswith("no (") or not ours.values or ipy is None or not ipy.values:
        return met
    if peer.median < ipy.median and ours.median <= 1.10 * ipy.median:
        return f"yes (peer starts faster than ipykernel; ours {ours.median / ipy.median:.2f}× ipykernel's)"
    return met


def _interrupt_met(ours: Samples, peer: Samples | None) -> str:
    if not ours.values:
        return "no (ours did not stop)"
    if ours.median > INTERRUPT_TARGET:
        return f"no ({_ms(ours.median)} > 200 ms)"
    return "yes" if peer is None else _ratio_met(ours, peer) if peer.values else "yes (peer did not stop)"


def _ms(value: float) -> str:
    return f"{value * 1000:.0f} ms"


def _row(pair: str, measure: str, ours_label: str, peer_label: str, ours: Samples, peer: Samples,
         target: str, met: str, note: str = "") -> PeerRow:
    return PeerRow(measure, ours_label, peer_label, ours, peer, pair=pair, target=target, met=met, note=note)


def _state(lives: list[Life], pick: Callable[[Life], bool | None], stateful: bool) -> str:
    """Whether the value set before an interrupt was there after it, over the lives that got that far."""
    if not stateful:
        return "— (no state between cells)"
    found = [value for value in map(pick, lives) if value is not None]
    if not found:
        return "not reached"
    kept = sum(found)
    said = "yes" if kept == len(found) else f"no (lost in {len(found) - kept} of {len(found)})"
    return said if len(found) == len(lives) else f"{said}; {len(lives) - len(found)} of {len(lives)} not reached"


def pair_rows(pair: Pair, title: str, label: str, ours: list[Life], peer: list[Life], ipy: list[Life] | None,
              lines: int) -> list[PeerRow]:
    """The rows of one pair from its lives (peer lives empty when the peer is not installed)."""
    rows = []
    ipy_info = _samples(ipy, lambda life: life.start_info) if ipy else None
    ipy_first = _samples(ipy, lambda life: life.start_first) if ipy else None
    measures = [  # measure, step (peer_life's name, for its problems), pick, target, judge
        ("start → kernel_info reply", LIFE_ENDED, lambda life: life.start_info,
         "≤ 1.0× peer, or ≤ 1.1× ipykernel's start", lambda o, p: _start_met(o, p, ipy_info)),
        ("start → first cell's reply", LIFE_ENDED, lambda life: life.start_first,
         "≤ 1.0× peer, or ≤ 1.1× ipykernel's", lambda o, p: _start_met(o, p, ipy_first)),
        ("trivial cell", LIFE_ENDED, lambda life: life.trivial, "≤ 1.0× peer", _ratio_met),
        (f"{lines:,} printed lines", "printed lines", lambda life: life.lines, "≤ 1.0× peer", _ratio_met),
        ("interrupt of a busy loop → reply", "interrupt of a busy loop", lambda life: life.interrupt,
         "≤ 1.0× peer and ≤ 200 ms", _interrupt_met),
        ("interrupt of a read of stdin → reply", "interrupt of a read", lambda life: life.stdin_interrupt,
         "≤ 200 ms (ours)", lambda o, p: _interrupt_met(o, None)),
    ]
    for measure, step, pick, target, judge in measures:
        mine, theirs = _samples(ours, pick), _samples(peer, pick)
        if not mine.values and not theirs.values:
            continue
        no_stdin = step == "interrupt of a read" and peer and pair.cells_of(pair.peer).read is None
        notes = [_why_fewer(ours, _reached(ours, pick), "ours", step),
                 "peer: no way to read stdin" if no_stdin else _why_fewer(peer, _reached(peer, pick), "peer", step)]
        if measure.endswith("printed lines"):
            notes.extend(_lost_lines(side, lines) for side in (ours, peer))
        rows.append(_row(title, measure, pair.ours, label, mine, theirs, target, judge(mine, theirs),
                         "; ".join(note for note in notes if note)))
    rss_ours, rss_peer = _samples(ours, lambda life: life.rss, "B"), _samples(peer, lambda life: life.rss, "B")
    rows.append(_row(title, "idle memory (RSS of the process tree)", pair.ours, label, rss_ours, rss_peer, "", "—"))
    return rows


def _lost_lines(lives: list[Life], lines: int) -> str:
    """Lives whose client saw fewer lines than were printed (a kernel sending a message per line overflows
    the ZMQ high-water mark of 1,000 messages when the client reads slower than it sends)."""
    done = [life for life in lives if life.lines is not None]
    seen = [life.lines_seen for life in done if life.lines_seen < lines]
    late = [life.lines_late for life in done if life.lines_late]
    said = []
    if seen:
        said.append(f"the client saw {min(seen):,}–{max(seen):,} of the {lines:,} lines in {len(seen)} of "
                    f"{len(lives)} lives")
    if late:
        said.append(f"{min(late):,}–{max(late):,} lines came after the cell's reply (not timed) in {len(late)} "
                    f"of {len(lives)} lives")
    return f"{lives[0].kernel}: {'; '.join(said)}" if said else ""


def _reached(lives: list[Life], pick: Callable[[Life], object]) -> int:
    return sum(1 for life in lives if pick(life) not in (None, []))


def behaviours(title: str, lives: list[Life], stateful: bool) -> Behaviour:
    first = next((life for life in lives if life.behaviour), lives[0])
    answers = {key: "not reached" for key in ("error", "stdin", "completion", "inspect")}
    answers.update(first.behaviour)
    answers["interrupt_state"] = _state(lives, lambda life: life.interrupt_state, stateful)
    answers["stdin_state"] = _state(lives, lambda life: life.stdin_state, stateful)
    return Behaviour(title, first.kernel, answers)


async def run_pair(pair: Pair, peer: Peer | None, s: PeerSettings, table: PeerTable,
                   ipy: list[Life] | None) -> tuple[list[Life], list[Life]]:
    """Interleaved lives of our kernel and the peer; rows, behaviours and our problems into ``table``."""
    label = peer.package if peer else pair.peer_label
    title = f"{pair.ours} / {label}"
    missing = [program for program in pair.programs if shutil.which(program) is None]
    if missing:
        table.rows.append(missing_row(title, f"not measured: {', '.join(missing)} is not installed"))
        return [], []
    if peer is not None and not peer.installed:
        table.rows.append(missing_row(title, f"not installed: {peer.reason}"))
    ours: list[Life] = []
    theirs: list[Life] = []
    for index in range(s.rounds):
        for kernel, lives in ((pair.ours, ours), (pair.peer, theirs)):
            if kernel == pair.peer and (peer is None or not peer.installed):
                continue
            print(f"  {kernel} (round {index + 1} of {s.rounds})", flush=True)
            lives.append(await one_life(kernel, pair.cells_of(kernel), lines=s.lines,
                                        trivial_repeats=s.trivial_repeats, behaviour=index == 0))
    table.failures.extend(_failures(pair.ours, ours))
    reference = None if pair.peer == IPYKERNEL else ipy
    table.rows.extend(pair_rows(pair, title, label, ours, theirs, reference, s.lines))
    if ours and not any(found.kernel == pair.ours for found in table.behaviours):
        table.behaviours.append(behaviours(title, ours, pair.cells.stateful))
    if theirs:
        table.behaviours.append(behaviours(title, theirs, pair.cells.stateful))
    return ours, theirs


def _from_case(row, target: str, met: str) -> PeerRow:
    return PeerRow(row.benchmark, row.ours_label, row.baseline_label, row.ours, row.baseline, pair=row.ours_label,
                   target=target, met=met)


async def c_targets(s: PeerSettings) -> list[PeerRow]:
    """cases.py's C rows (first run, re-run, streamed output), judged against the issue's targets."""
    settings = cases.Settings(repeats=s.c_repeats, scale_kernels=1, stream_mb=s.stream_mb)
    first, rerun = await cases.c_cells(settings)
    stream, piped = await cases.streamed_output(settings)
    floor = first.baseline.median + 0.010
    return [
        _from_case(first, "≤ gcc + run + 10 ms",
                   "yes" if first.ours.median <= floor else f"no ({_ms(first.ours.median - floor)} over)"),
        _from_case(rerun, "≤ 0.1× the first run", "yes" if rerun.ratio <= 0.1 else f"no ({rerun.ratio:.2f}×)"),
        _from_case(stream, "≤ 3× the program to /dev/null",
                   "yes" if stream.ratio <= 3.0 else f"no ({stream.ratio:.2f}×; the program into a pipe read by cat "
                   f"takes {piped.baseline.median / stream.baseline.median:.2f}× /dev/null)"),
        _from_case(piped, "— (the floor of the row above)", f"ours {piped.ratio:.2f}× the floor"),
    ]


def derived_targets(lives: dict[str, list[Life]]) -> list[PeerRow]:
    """Targets read from the pairs' lives: backend-python's start, Node.js's idle memory."""
    rows = []
    ipy, python, node = lives.get(IPYKERNEL, []), lives.get("backend-python", []), lives.get("backend-nodejs", [])
    if ipy and python:
        ours, stock = _samples(python, lambda life: life.start_info), _samples(ipy, lambda life: life.start_info)
        ratio = ours.median / stock.median
        rows.append(_row("backend-python", "start → kernel_info reply", "backend-python",
                         "ipykernel, stock LocalProvisioner", ours, stock, "≤ 1.03× stock ipykernel",
                         "yes" if ratio <= 1.03 else f"no ({ratio:.2f}×)"))
    if ipy and node:
        ours, stock = _samples(node, lambda life: life.rss, "B"), _samples(ipy, lambda life: life.rss, "B")
        ratio = ours.median / stock.median
        rows.append(_row("backend-nodejs", "idle memory (RSS of the process tree)", "backend-nodejs",
                         "ipykernel idle", ours, stock, "≤ 1.3× ipykernel's",
                         "yes" if ratio <= 1.3 else f"no ({ratio:.2f}×)"))
    return rows


async def solo_interrupts(s: PeerSettings, table: PeerTable) -> list[PeerRow]:
    """Interrupts of our kernels that have no peer here (target ≤ 200 ms, busy loop and read of stdin)."""
    rows = []
    for solo in SOLOS:
        missing = [program for program in solo.programs if shutil.which(program) is None]
        if missing:
            rows.append(missing_row(solo.kernel, f"not measured: {', '.join(missing)} is not installed"))
            continue
        lives = []
        for index in range(s.rounds):
            print(f"  {solo.kernel} interrupts (round {index + 1} of {s.rounds})", flush=True)
            lives.append(await interrupt_life(solo.kernel, solo.cells))
        table.failures.extend(_failures(solo.kernel, lives))
        for measure, step, pick in (
                ("interrupt of a busy loop → reply", "interrupt of a busy loop", lambda life: life.interrupt),
                ("interrupt of a read of stdin → reply", "interrupt of a read", lambda life: life.stdin_interrupt)):
            mine = _samples(lives, pick)
            rows.append(_row(solo.kernel, measure, solo.kernel, "—", mine, Samples(), "≤ 200 ms",
                             _interrupt_met(mine, None), _why_fewer(lives, len(mine.values), "ours", step)))
        table.behaviours.append(Behaviour(solo.kernel, solo.kernel, {
            "interrupt_state": _state(lives, lambda life: life.interrupt_state, solo.cells.stateful),
            "stdin_state": _state(lives, lambda life: life.stdin_state, solo.cells.stateful)}))
    return rows


async def peer_cases(s: PeerSettings, peers: dict[str, Peer], parts: set[str]) -> PeerTable:
    """The peer table; ``parts`` picks among "pairs", "targets", "interrupts" (all by default)."""
    table = PeerTable(peers={name: {"package": p.package, "version": p.version, "source": p.source,
                                    "reason": p.reason} for name, p in peers.items()})
    lives: dict[str, list[Life]] = {}
    if "pairs" in parts:
        for pair in PAIRS:
            print(f"pair {pair.title} ...", flush=True)
            ipy = lives.get(IPYKERNEL)
            ours, theirs = await run_pair(pair, peers.get(pair.peer), s, table, ipy)
            lives.setdefault(pair.ours, ours)
            lives.setdefault(pair.peer, theirs)
        table.targets.extend(derived_targets(lives))
    if "targets" in parts:
        print("C targets (first run, re-run, streamed output) ...", flush=True)
        try:
            table.targets.extend(await c_targets(s))
        except Exception as exc:  # our kernel or gcc: a failure of ours, reported, the rest goes on
            table.failures.append(f"C targets: {type(exc).__name__}: {exc}")
    if "interrupts" in parts:
        print("interrupts of our other kernels ...", flush=True)
        table.targets.extend(await solo_interrupts(s, table))
    return table
