"""Timing and memory helpers: repeated samples, median and spread."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass
class Samples:
    """Repeated measurements of one quantity (seconds or bytes)."""

    values: list[float] = field(default_factory=list)
    unit: str = "s"

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def slowest(self) -> float:
        return max(self.values) if self.values else float("nan")

    @property
    def spread(self) -> float:
        """Half the interquartile range relative to the median (a robust ± in %)."""
        if len(self.values) < 2 or not self.median:
            return 0.0
        q = statistics.quantiles(self.values, n=4, method="inclusive")
        return 100.0 * (q[2] - q[0]) / 2 / self.median


async def sample(fn: Callable[[], Awaitable[float | None]], repeats: int, unit: str = "s") -> Samples:
    """Run ``fn`` ``repeats`` times; it returns its own measurement, or None to be timed whole."""
    result = Samples(unit=unit)
    for _ in range(repeats):
        start = time.perf_counter()
        value = await fn()
        result.values.append(value if value is not None else time.perf_counter() - start)
    return result


def process_tree(pid: int) -> set[int]:
    """``pid`` and its descendants now (from /proc's parent links)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        found.add(current)
        todo.extend(children.get(current, []))
    return found


def tree_rss(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants, in bytes (from /proc)."""
    total, page = 0, os.sysconf("SC_PAGE_SIZE")
    for member in process_tree(pid):
        try:
            with open(f"/proc/{member}/statm") as fh:
                total += int(fh.read().split()[1]) * page
        except OSError:
            continue
    return total
