"""The log a one-partition benchmark replays: one given with `--log`, or one generated
from the same seeded options (`replay_phases.py`, `store_floor.py`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from omniconsole.domain.generator import write_log
from omniconsole.domain.timeutil import parse_timestamp


def add_log_args(parser: argparse.ArgumentParser) -> None:
    """`--log`, or what to generate: customers, days, events per customer, mix, seed, start."""
    parser.add_argument("--log", type=Path, help="replay this log (else one is generated)")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--events-per-customer", type=float, default=None)
    parser.add_argument("--mix", default="decision-heavy", help="the generator's event mix")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", default="2026-03-02T00:00:00Z", help="ISO 8601 start")


def log_of(args: argparse.Namespace, work: Path) -> Path:
    """`--log`, or a log generated into `work` from the other options."""
    if args.log is not None:
        return Path(args.log)
    log = work / "log.jsonl"
    write_log(
        log, args.customers, args.days, args.seed, parse_timestamp(args.start),
        events_per_customer=args.events_per_customer, mix=args.mix,
    )  # fmt: skip
    return log
