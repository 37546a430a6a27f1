"""The peer table: our kernel beside the one a user would install instead, each row with its target and
whether it is met; the behaviour table; written as ``peers.md`` and ``peers.json`` beside benchmarks.md."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from measure import Samples
from report import Row, _fmt, machine


@dataclass
class PeerRow(Row):
    """A row of the peer table; ``benchmark`` is the measure, ``baseline`` the peer's samples."""

    pair: str = ""
    target: str = ""
    met: str = "—"  # yes / no / — (no target, or nothing to judge)
    #: Why a side has fewer samples than lives (a peer that did not answer), or the reason it is not installed.
    note: str = ""
    missing: str = ""  # "not installed: …" rows carry only this

    def as_dict(self) -> dict:
        found = super().as_dict()
        found.update(pair=self.pair, target=self.target, met=self.met, note=self.note, missing=self.missing,
                     baseline_samples=len(self.baseline.values))
        return found


def missing_row(pair: str, reason: str) -> PeerRow:
    return PeerRow("—", "", "", Samples(), Samples(), pair=pair, missing=reason)


@dataclass
class Behaviour:
    """Yes/no answers of one kernel (the key names a column of the behaviour table)."""

    pair: str
    kernel: str
    answers: dict[str, str] = field(default_factory=dict)


COLUMNS = {
    "error": "error → `error` reply",
    "stdin": "stdin → `input_request`",
    "completion": "completion matches",
    "inspect": "inspect found",
    "interrupt_state": "state kept (busy loop interrupted)",
    "stdin_state": "state kept (read interrupted)",
}


@dataclass
class PeerTable:
    rows: list[PeerRow] = field(default_factory=list)
    targets: list[PeerRow] = field(default_factory=list)   # targets beyond the pairs (C, Python start, …)
    behaviours: list[Behaviour] = field(default_factory=list)
    peers: dict[str, dict] = field(default_factory=dict)   # kernelspec name → package, version, reason
    failures: list[str] = field(default_factory=list)       # problems of OUR kernels: the run fails


def _ratio(row: PeerRow) -> str:
    return "—" if math.isnan(row.ratio) else f"{row.ratio:.2f}×"


def _median(samples: Samples) -> str:
    if not samples.values:
        return "—"
    return f"{_fmt(samples.median, samples.unit)} (±{samples.spread:.0f}%)"


def _lines(rows: list[PeerRow], first: str) -> list[str]:
    lines = [
        f"| {first} | measure | ratio (ours / peer) | ours median (± spread) | peer median (± spread) "
        "| n: ours / peer | target | met |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        if row.missing:
            lines.append(f"| {row.pair} | — | — | — | {row.missing} | — | — | — |")
            continue
        lines.append(
            f"| {row.pair} | {row.benchmark} | {_ratio(row)} | {_median(row.ours)} | {_median(row.baseline)} | "
            f"{len(row.ours.values)} / {len(row.baseline.values)} | {row.target or '—'} | {row.met} |")
    return lines


def _notes(rows: list[PeerRow]) -> list[str]:
    return [f"* **{row.pair}, {row.benchmark}**: {row.note}" for row in rows if row.note and not row.missing]


def markdown(table: PeerTable, mode: str) -> str:
    lines = [f"Machine: {machine()}; mode: {mode}.", "", "Peers:", ""]
    for name, peer in table.peers.items():
        state = f"{peer['version']} ({peer['source']})" if not peer["reason"] else f"not installed: {peer['reason']}"
        lines.append(f"* `{name}`: {peer['package']} {state}")
    if table.rows:
        lines += ["", *_lines(table.rows, "pair (ours / peer)")]
    if table.targets:
        lines += ["", "Targets beyond the pairs:", "", *_lines(table.targets, "kernel")]
    if table.behaviours:
        head = " | ".join(COLUMNS.values())
        lines += ["", "Behaviour (one life of each kernel):", "", f"| pair | kernel | {head} |",
                  "| --- | --- | " + " | ".join("---" for _ in COLUMNS) + " |"]
        for found in table.behaviours:
            cells = " | ".join(found.answers.get(key, "—") for key in COLUMNS)
            lines.append(f"| {found.pair} | {found.kernel} | {cells} |")
    notes = _notes(table.rows) + _notes(table.targets)
    if notes:
        lines += ["", "Notes:", "", *notes]
    if table.failures:
        lines += ["", "Problems of our kernels in this run:", "", *(f"* {failure}" for failure in table.failures)]
    return "\n".join(lines) + "\n"


def write(table: PeerTable, mode: str, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path, json_path = out_dir / "peers.md", out_dir / "peers.json"
    md_path.write_text(markdown(table, mode))
    document = {
        "machine": machine(), "mode": mode, "peers": table.peers,
        "rows": [row.as_dict() for row in table.rows], "targets": [row.as_dict() for row in table.targets],
        "behaviour": [{"pair": b.pair, "kernel": b.kernel, **b.answers} for b in table.behaviours],
        "failures": table.failures,
    }
    json_path.write_text(json.dumps(document, indent=2, default=str))
    return md_path, json_path
