"""`omniconsole compare`: one event log replayed under two configs, side by side (what-if).

The two replays run at the same time, each in its own process with its own store in
a temporary folder, through the ordinary replay driver (`run_replay`, partitions as
usual: one engine process per CPU for each). Each replay is exactly what
`omniconsole replay` would write, so the comparison is of two real runs, read back
from their ledger files and reports:

- decisions per channel and outcome; deferrals and suppressions per reason;
- how many customers hit each cap (a line with that cap as its reason);
- messages sent per customer per week (the distribution over customer-weeks);
- handoffs; conversions per journey (and the lift, where a config measures it);
- the customers whose decisions differ most, with their ledger lines.

A customer's difference is the number of ledger lines (time, journey, step, channel,
outcome, reason) that one run has and the other has not.
"""

from __future__ import annotations

import multiprocessing
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson

from omniconsole.domain.config import load_config, shipped_config_dir
from omniconsole.engine.replay import ReplayError, ReplayOptions, run_replay

#: the outcomes a ledger line can have, in the order tables show them
OUTCOME_ORDER = ("sent", "deferred", "suppressed", "held_out", "failed")
#: messages per customer per week: the last bucket is "this many or more"
WEEK_BUCKETS = 7


@dataclass(slots=True)
class CompareOptions:
    """What to compare: one log, two config folders (None: the shipped config)."""

    log: Path
    configs: tuple[Path | None, Path | None]
    until: datetime | None = None
    partitions: int = 1  # per replay
    top: int = 5  # customers whose decisions differ most
    workdir: Path | None = None  # where the two stores go (default: a temporary folder)


@dataclass(slots=True)
class _Tally:
    """One ledger, counted in one pass."""

    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (channel, outcome)
    reasons: Counter[tuple[str, str]] = field(default_factory=Counter)  # (outcome, reason)
    caps: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    weekly: Counter[tuple[str, str]] = field(default_factory=Counter)  # (customer, week) sent
    weeks_seen: set[tuple[str, str]] = field(default_factory=set)
    lines: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))


def _replay_one(options: ReplayOptions) -> tuple[dict[str, Any], float]:
    """Run one replay (in a worker process); its report and its wall time."""
    started = time.monotonic()
    report = run_replay(options)
    return report, time.monotonic() - started


def run_replays(options: CompareOptions, folder: Path) -> list[tuple[dict[str, Any], float]]:
    """Both replays at once, each in its own process; their reports and times."""
    runs = [
        ReplayOptions(
            log=options.log,
            db=folder / f"{tag}.db",
            ledger=folder / f"{tag}.ledger.jsonl",
            report=folder / f"{tag}.report.json",
            config_dir=config,
            until=options.until,
            partitions=options.partitions,
        )
        for tag, config in zip("ab", options.configs, strict=True)
    ]
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=spawn) as pool:
        futures = [pool.submit(_replay_one, run) for run in runs]
        return [future.result() for future in futures]


def _week(day: str, cache: dict[str, str]) -> str:
    found = cache.get(day)
    if found is None:
        year, week, _ = date.fromisoformat(day).isocalendar()
        found = cache[day] = f"{year}-W{week:02d}"
    return found


def _key(line: dict[str, Any]) -> tuple[Any, ...]:
    return (line["at"], line["journey"], line["step"], line["channel"], line["outcome"],
            line["reason"])  # fmt: skip


def tally_ledger(path: Path) -> _Tally:
    """Count one ledger file."""
    tally = _Tally()
    weeks: dict[str, str] = {}
    with path.open("rb") as handle:
        for raw in handle:
            line = orjson.loads(raw)
            outcome, reason, customer = line["outcome"], line["reason"], line["customer"]
            tally.outcomes[(line["channel"] or "(no channel)", outcome)] += 1
            week = (customer, _week(line["at"][:10], weeks))
            tally.weeks_seen.add(week)
            if outcome == "sent":
                tally.weekly[week] += 1
            elif reason is not None:
                tally.reasons[(outcome, reason)] += 1
                if reason.startswith("cap:"):
                    tally.caps[reason].add(customer)
            tally.lines[customer].append(hash(_key(line)))
    return tally


def _difference(a: list[int], b: list[int]) -> int:
    ca, cb = Counter(a), Counter(b)
    return sum(((ca - cb) + (cb - ca)).values())


def _lines_of(path: Path, customers: set[str]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with path.open("rb") as handle:
        for raw in handle:
            line = orjson.loads(raw)
            if line["customer"] in customers:
                found[line["customer"]].append(line)
    return found


def _pairs(a: Counter[Any], b: Counter[Any]) -> list[tuple[Any, int, int]]:
    keys = sorted(set(a) | set(b), key=lambda k: tuple(str(x) for x in k))
    return [(k, a.get(k, 0), b.get(k, 0)) for k in keys]


def _distribution(tally: _Tally, weeks: set[tuple[str, str]]) -> dict[str, Any]:
    buckets = [0] * WEEK_BUCKETS
    total = 0
    most = 0
    for week in weeks:
        sent = tally.weekly.get(week, 0)
        buckets[min(sent, WEEK_BUCKETS - 1)] += 1
        total += sent
        most = max(most, sent)
    labels = [str(n) for n in range(WEEK_BUCKETS - 1)] + [f"{WEEK_BUCKETS - 1}+"]
    return {
        "customer_weeks": dict(zip(labels, buckets, strict=True)),
        "mean": round(total / len(weeks), 3) if weeks else 0.0,
        "max": most,
    }


def compare(options: CompareOptions) -> dict[str, Any]:
    """Replay the log under both configs and compare; the comparison as JSON-ready data."""
    if not options.log.is_file():
        raise ReplayError(f"log file not found: {options.log}")
    names = [str(c or shipped_config_dir()) for c in options.configs]
    configs = [load_config(c or shipped_config_dir()) for c in options.configs]  # fail fast
    with tempfile.TemporaryDirectory(prefix="omniconsole-compare-", dir=options.workdir) as tmp:
        folder = Path(tmp)
        started = time.monotonic()
        runs = run_replays(options, folder)
        wall = time.monotonic() - started
        ledgers = [folder / "a.ledger.jsonl", folder / "b.ledger.jsonl"]
        a, b = (tally_ledger(p) for p in ledgers)
        scored = [
            (_difference(a.lines.get(c, []), b.lines.get(c, [])), c)
            for c in sorted(set(a.lines) | set(b.lines))
        ]
        top = sorted((s for s in scored if s[0] > 0), key=lambda s: (-s[0], s[1]))[: options.top]
        chosen = {c for _, c in top}
        lines_a, lines_b = _lines_of(ledgers[0], chosen), _lines_of(ledgers[1], chosen)
    reports = [report for report, _ in runs]
    weeks = a.weeks_seen | b.weeks_seen
    return {
        "log": str(options.log),
        "configs": {"a": names[0], "b": names[1]},
        "replays": {
            "a": {"seconds": round(runs[0][1], 2)},
            "b": {"seconds": round(runs[1][1], 2)},
            "wall_seconds": round(wall, 2),
            "partitions_each": options.partitions,
        },
        "decisions": [
            {"channel": ch, "outcome": o, "a": x, "b": y}
            for (ch, o), x, y in _pairs(a.outcomes, b.outcomes)
        ],
        "reasons": [
            {"outcome": o, "reason": r, "a": x, "b": y}
            for (o, r), x, y in _pairs(a.reasons, b.reasons)
        ],
        "customers_capped": {
            reason: {"a": len(a.caps.get(reason, ())), "b": len(b.caps.get(reason, ()))}
            for reason in sorted(set(a.caps) | set(b.caps))
        },
        "messages_per_customer_week": {
            "a": _distribution(a, weeks),
            "b": _distribution(b, weeks),
        },
        "handoffs": {"a": reports[0]["handoffs"], "b": reports[1]["handoffs"]},
        "journeys": {
            name: {"a": reports[0]["journeys"].get(name), "b": reports[1]["journeys"].get(name)}
            for name in sorted({j.name for c in configs for j in c.journeys})
        },
        "outcomes": {"a": reports[0].get("outcomes"), "b": reports[1].get("outcomes")},
        "customers_differing": sum(1 for s, _ in scored if s > 0),
        "most_different": [
            {"customer": c, "difference": s, "a": lines_a.get(c, []), "b": lines_b.get(c, [])}
            for s, c in top
        ],
    }
