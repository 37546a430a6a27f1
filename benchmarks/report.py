"""The benchmark table: ratios against a baseline measured in the same run."""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from pathlib import Path

from measure import Samples


@dataclass
class Row:
    benchmark: str
    ours_label: str
    baseline_label: str
    ours: Samples
    baseline: Samples
    closer_to_floor: str = ""

    @property
    def ratio(self) -> float:
        return self.ours.median / self.baseline.median if self.baseline.median else float("nan")

    def as_dict(self) -> dict:
        return {
            "benchmark": self.benchmark,
            "ours": self.ours_label,
            "baseline": self.baseline_label,
            "ratio": self.ratio,
            "ours_median": self.ours.median,
            "ours_spread_pct": self.ours.spread,
            "baseline_median": self.baseline.median,
            "baseline_spread_pct": self.baseline.spread,
            "ours_slowest": self.ours.slowest,
            "baseline_slowest": self.baseline.slowest,
            "unit": self.ours.unit,
            "samples": len(self.ours.values),
            "closer_to_floor": self.closer_to_floor,
        }


def _fmt(value: float, unit: str) -> str:
    if unit == "B":
        return f"{value / 2**20:.1f} MiB"
    if value >= 1:
        return f"{value:.2f} s"
    return f"{value * 1000:.1f} ms"


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    system = f"{platform.system()} {platform.release()}"
    return f"{system}, {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, Python {platform.python_version()}"


def markdown(rows: list[Row], mode: str) -> str:
    lines = [
        f"Machine: {machine()}; mode: {mode}.",
        "",
        "| benchmark | ours | baseline | ratio (ours / baseline) | ours median (± spread) "
        "| baseline median (± spread) | slowest: ours / baseline | n |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        unit = row.ours.unit
        lines.append(
            f"| {row.benchmark} | {row.ours_label} | {row.baseline_label} | {row.ratio:.2f}× | "
            f"{_fmt(row.ours.median, unit)} (±{row.ours.spread:.0f}%) | "
            f"{_fmt(row.baseline.median, unit)} (±{row.baseline.spread:.0f}%) | "
            f"{_fmt(row.ours.slowest, unit)} / {_fmt(row.baseline.slowest, unit)} | {len(row.ours.values)} |"
        )
    notes = [f"* **{row.benchmark}**: {row.closer_to_floor}" for row in rows if row.closer_to_floor]
    if notes:
        lines += ["", "What would move each row closer to its floor:", "", *notes]
    return "\n".join(lines) + "\n"


def write(rows: list[Row], mode: str, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path, json_path = out_dir / "benchmarks.md", out_dir / "benchmarks.json"
    md_path.write_text(markdown(rows, mode))
    document = {"machine": machine(), "mode": mode, "rows": [r.as_dict() for r in rows]}
    json_path.write_text(json.dumps(document, indent=2))
    return md_path, json_path
