"""Memory and threads summed over a tree of processes (Linux /proc; zeros elsewhere).

A partitioned replay runs partition processes beside the driver; a simulated Ray
cluster runs its GCS, a raylet per node and a worker process per actor below it; a
PostgreSQL server runs its postmaster and backends apart from both. `TreeSampler`
samples all of them: the descendants of this process, plus any other roots (the
postmaster) with their descendants.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable


def children(pid: int) -> list[int]:
    """Every descendant of `pid` (depth first)."""
    out: list[int] = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
            kids = [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return out
    for kid in kids:
        out.append(kid)
        out.extend(children(kid))
    return out


def status(pid: int | str, key: str) -> int:
    """One number from /proc/<pid>/status (`Threads`, or `VmRSS` in kB), 0 if gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def pss_kb(pid: int) -> int:
    """Proportional set size (shared pages split between their users), kB."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class TreeSampler:
    """Peak sums of RSS, PSS and threads over this process's tree and `roots`' trees,
    sampled every `interval` s on a background thread (PSS every `pss_every`th time:
    reading it costs ~1 ms a process)."""

    def __init__(self, roots: Iterable[int] = (), interval: float = 0.05, pss_every: int = 20):
        self.roots = [os.getpid(), *roots]
        self.interval, self.pss_every = interval, pss_every
        self.peak_rss_kb = self.peak_pss_kb = self.peak_threads = self.peak_processes = 0
        #: peak RSS of the `roots` given (PostgreSQL), apart
        self.peak_other_rss_kb = 0
        self._n = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-sampler", daemon=True)

    def pids(self) -> tuple[list[int], list[int]]:
        """(this process and its descendants, the other roots and theirs)."""
        own = [self.roots[0], *children(self.roots[0])]
        other = [p for root in self.roots[1:] for p in (root, *children(root))]
        return own, other

    def sample(self) -> None:
        own, other = self.pids()
        every = own + other
        self.peak_rss_kb = max(self.peak_rss_kb, sum(status(p, "VmRSS") for p in every))
        self.peak_other_rss_kb = max(self.peak_other_rss_kb, sum(status(p, "VmRSS") for p in other))
        self.peak_threads = max(self.peak_threads, sum(status(p, "Threads") for p in every))
        self.peak_processes = max(self.peak_processes, len(every))
        if self._n % self.pss_every == 0:
            self.peak_pss_kb = max(self.peak_pss_kb, sum(pss_kb(p) for p in every))
        self._n += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> TreeSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._n = 0
        self.sample()
        self._stop.set()
        self._thread.join()
