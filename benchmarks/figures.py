"""Figures for the benchmarks and the conditions they are taken under: percentiles, goal verdicts,
a compact table, the machine line and torch's thread count.

    >>> percentile([10.0, 20.0, 30.0, 40.0], 50)
    25.0
    >>> print(table(["stage", "p50 ms"], [["total", "12.5"]]))
    stage  p50 ms
    -----  ------
    total  12.5
"""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], pct: float) -> float:
    """The `pct`th percentile, interpolated between the closest ranks (the one value, for one)."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return float(values[0])
    return statistics.quantiles(values, n=100, method="inclusive")[int(pct) - 1]


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, a rule under the header."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(cell).ljust(width) for cell, width in zip(cells, widths)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(row) for row in rows)])


def machine() -> str:
    """One line naming the machine the figures come from, and how busy it was when they started."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
            f"load average {load:.2f} at start")


def use_torch_threads(threads: int | None) -> int:
    """Set torch's intra-op threads in this process (None keeps torch's default); the number in use.

    On a machine with more runnable threads than cores, torch's worker threads wait on each other
    and a single query embedding can take many times longer than with one thread; the benchmarks
    take this as an option so the effect can be measured rather than guessed.
    """
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    return int(torch.get_num_threads())
