"""Per-customer residue: what the in-process engine keeps for customers not in memory.

    .venv/bin/python benchmarks/residue.py LOG --max-active 1000 --until 2026-03-09T00:00:00Z

Replays LOG in this process (`--partitions 1`) and, just before the engine stops (at
`--until`, so timers are still pending), measures the engine's own structures with a
deep `sys.getsizeof` (an object reachable from two structures is counted once, in the
first): customer ids, passivated ids, timer heads, the governor's cap usage, active
and evicted profiles, and the driver's duplicate check (`SeenIds`). Prints each in MB
and in bytes per customer seen (the duplicate check also per event). A benchmark tool:
it reads private attributes of the actors, and may need updating when they move.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from omniconsole.actors.governor import FatigueGovernorActor
from omniconsole.actors.profile_shard import ProfileShardActor
from omniconsole.actors.runtime import ActorEngine
from omniconsole.domain.timeutil import parse_timestamp
from omniconsole.engine.replay import ReplayOptions, run_replay
from omniconsole.engine.seen_ids import SeenIds

SHARDS: list[Any] = []
GOVERNORS: list[Any] = []
SEEN: list[SeenIds] = []


def deep_size(obj: object, memo: set[int]) -> int:
    """Bytes of `obj` and everything it holds not already in `memo`."""
    if id(obj) in memo:
        return 0
    memo.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(deep_size(k, memo) + deep_size(v, memo) for k, v in obj.items())
    elif isinstance(obj, list | tuple | set | frozenset):
        size += sum(deep_size(v, memo) for v in obj)
    elif not isinstance(obj, str | bytes | int | float):
        for name in getattr(type(obj), "__slots__", ()):
            if hasattr(obj, name):
                size += deep_size(getattr(obj, name), memo)
    return size


def measure() -> dict[str, Any]:
    """The residue of the shards and the governor created in this process."""
    memo: set[int] = set()
    shards, governor = SHARDS, GOVERNORS[0]
    customers: set[str] = set()
    for shard in shards:
        customers |= set(shard.active) | shard.passivated | set(shard.evicted)
    rows = {
        "customer ids (one string each, shared)": sum(deep_size(c, memo) for c in customers),
        "passivated ids (set entries)": sum(deep_size(s.passivated, memo) for s in shards),
        "timer heads: scheduled dict": sum(deep_size(s.scheduled, memo) for s in shards),
        "timer heads: heap": sum(deep_size(s.timer_heap, memo) for s in shards),
        "governor cap usage": deep_size(governor.usage, memo),
        "active profiles (full)": sum(deep_size(s.active, memo) for s in shards),
        "evicted changed profiles (file offsets; bytes on disk)": sum(
            deep_size(s.evicted, memo) for s in shards
        ),
    }
    seen = SEEN[0]
    rows["duplicate check: digest table"] = deep_size(seen._slots, memo)
    rows["duplicate check: last ids, exactly"] = deep_size(seen._newer, memo) + deep_size(
        seen._older, memo
    )
    return {
        "customers": len(customers),
        "digests": len(seen),
        "active": sum(len(s.active) for s in shards),
        "timer_heads": sum(len(s.scheduled) for s in shards),
        "usage": len(governor.usage),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("log", type=Path)
    parser.add_argument("--workdir", type=Path, default=Path("out/residue"))
    parser.add_argument("--max-active", type=int, default=1000)
    parser.add_argument("--until", default=None, help="stop the clock here (ISO 8601)")
    args = parser.parse_args()

    shard_init, governor_init = ProfileShardActor.__init__, FatigueGovernorActor.__init__

    def shard(self: Any, *a: Any, **k: Any) -> None:
        SHARDS.append(self)
        shard_init(self, *a, **k)

    def governor(self: Any, *a: Any, **k: Any) -> None:
        GOVERNORS.append(self)
        governor_init(self, *a, **k)

    seen_init = SeenIds.__init__

    def seen_ids(self: SeenIds, *a: Any, **k: Any) -> None:
        SEEN.append(self)
        seen_init(self, *a, **k)

    SeenIds.__init__ = seen_ids  # type: ignore[method-assign]
    ProfileShardActor.__init__ = shard  # type: ignore[method-assign]
    FatigueGovernorActor.__init__ = governor  # type: ignore[method-assign]
    found: dict[str, Any] = {}
    stop = ActorEngine.stop

    def measured_stop(self: ActorEngine) -> None:
        self.drain()
        found.update(measure())
        stop(self)

    ActorEngine.stop = measured_stop  # type: ignore[method-assign]
    out = args.workdir
    out.mkdir(parents=True, exist_ok=True)
    run_replay(
        ReplayOptions(
            log=args.log, db=out / "residue.db", ledger=out / "ledger.jsonl",
            report=out / "report.json", rejects=None, partitions=1,
            max_active=args.max_active,
            until=parse_timestamp(args.until) if args.until else None,
        )
    )  # fmt: skip
    n = max(1, found["customers"])
    print(f"customers {found['customers']:,}; active profiles {found['active']:,}; "
          f"timer heads {found['timer_heads']:,}; cap usage entries {found['usage']:,}")  # fmt: skip
    for what, size in found["rows"].items():
        print(f"{what:42s} {size / 1e6:8.1f} MB  {size / n:7.1f} B/customer")
    rows = found["rows"]
    heads = rows["timer heads: scheduled dict"] + rows["timer heads: heap"]
    print(f"per timer head: {heads / max(1, found['timer_heads']):.0f} B; per customer with"
          f" cap usage: {rows['governor cap usage'] / max(1, found['usage']):.0f} B")  # fmt: skip
    digests = rows["duplicate check: digest table"]
    print(f"duplicate check: {found['digests']:,} digests, the table"
          f" {digests / max(1, found['digests']):.1f} B per id applied")  # fmt: skip


if __name__ == "__main__":
    main()
