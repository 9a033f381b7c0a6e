"""A process tree from /proc (Linux; empty or zeros elsewhere), for the benchmarks.

A partitioned replay runs partition processes beside the driver; a simulated Ray
cluster runs its GCS, a raylet per node and a worker process per actor below it; a
PostgreSQL server runs its postmaster and backends apart from both. The benchmark's
sampler (`replay_throughput.ThreadSampler`) sums memory, threads and CPU over the
descendants of its process and of such other roots.
"""

from __future__ import annotations


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
