"""The `omniconsole` command: replay, generate, compare, explain, console, demo, serve, inbox.

(Over 400 lines: one argument parser per command, each a few lines that hand off to
the command's own module; kept together so `--help` reads as one table of contents.)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

from omniconsole.domain.config import ConfigError
from omniconsole.domain.timeutil import TimeFormatError, parse_timestamp


def bundled_sample() -> Path:
    """The sample log shipped inside the package (`examples/sample.jsonl` in a checkout)."""
    return Path(str(files("omniconsole") / "examples" / "sample.jsonl"))


class UsageError(Exception):
    """A mistake in how the command was called; shown as one line."""


def _timestamp(text: str) -> datetime:
    try:
        return parse_timestamp(text)
    except TimeFormatError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


#: partitions the command line takes at all; each store has its own limit (SQLite 8)
MAX_PARTITIONS = 256


def _partitions(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= MAX_PARTITIONS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_PARTITIONS}, got {value}")
    return value


DB_HELP = "store: a SQLite file, or a postgresql://user@host/db URL (see docs/cluster.md)"


def default_partitions() -> int:
    """One engine partition per CPU this process may use, at most MAX_PARTS."""
    from omniconsole.adapters.store.parts import MAX_PARTS
    from omniconsole.engine.partitioned import usable_cpus

    return min(usable_cpus(), MAX_PARTS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="omniconsole",
        description="Omnichannel messaging orchestration engine with a terminal ops console.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    replay = sub.add_parser("replay", help="replay an event log headless on a simulated clock")
    replay.add_argument("log", type=Path, help="event log, JSON Lines (SPEC §2)")
    replay.add_argument(
        "--config", type=Path, default=None, help="config folder (default: shipped)"
    )
    replay.add_argument("--db", required=True, help=DB_HELP)
    replay.add_argument("--ledger", type=Path, required=True, help="ledger output (JSON Lines)")
    replay.add_argument("--report", type=Path, required=True, help="report output (JSON)")
    replay.add_argument("--rejects", type=Path, default=None, help="rejected lines (JSON Lines)")
    replay.add_argument("--until", type=_timestamp, default=None, help="stop the clock at ISO_TIME")
    replay.add_argument(
        "--resume", action="store_true", help="continue an interrupted replay from its store"
    )
    replay.add_argument("--fresh", action="store_true", help=argparse.SUPPRESS)
    replay.add_argument(
        "--checkpoint-every",
        type=int,
        default=250_000,
        metavar="N",
        help="commit a resumable checkpoint every N events (default 250000)",
    )
    replay.add_argument(
        "--max-active",
        type=int,
        default=None,
        metavar="N",
        help="profiles kept in memory at most; the rest are passivated to the store"
        " (default: 50000, and more while few customers are known: each partition"
        " keeps up to 2.5 times its share, less one for every ten customers it knows)",
    )
    replay.add_argument(
        "--partitions",
        type=_partitions,
        default=None,
        metavar="N",
        help="engine processes, each for a share of the customers (default: one per CPU,"
        " at most 8; 1 runs the engine in this process; with --ray: one per node)",
    )
    replay.add_argument(
        "--ray",
        default=None,
        metavar="ADDRESS",
        help="run the partitions as Ray actors on the cluster at ADDRESS (host:port), or"
        " 'auto' to start Ray on this machine; needs pip install 'omniconsole[cluster]'",
    )
    replay.add_argument("--table", action="store_true", help="print the report as a table")
    replay.add_argument("--tui", action="store_true", help="run the replay inside the console")
    replay.add_argument(
        "--quiet", action="store_true", help="no progress bar, no resume line (errors only)"
    )

    from omniconsole.domain.generator import MIXES

    gen = sub.add_parser("generate", help="write a seeded, realistic event log")
    gen.add_argument("--customers", type=int, default=300)
    gen.add_argument("--days", type=int, default=14)
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--start", type=_timestamp, default=datetime(2026, 3, 2, tzinfo=UTC))
    gen.add_argument("--events-per-customer", type=float, default=None)
    gen.add_argument(
        "--mix",
        choices=list(MIXES),
        default="default",
        help="what customers do: the realistic default, or decision-heavy (mostly price"
        " drops and product views: most events cause a decision, many defer)",
    )
    gen.add_argument(
        "--plant-lift",
        action="append",
        default=[],
        metavar="JOURNEY=EFFECT",
        help="add goal events for the journey's treated customers (by the config's control"
        " groups) so its true lift is EFFECT, e.g. onboarding=0.08; needs --config with a"
        " control group",
    )
    gen.add_argument(
        "--config",
        type=Path,
        default=None,
        help="config folder whose control groups --plant-lift uses (default: shipped)",
    )
    gen.add_argument("--out", type=Path, default=None, help="output file (default: stdout)")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")

    console = sub.add_parser("console", help="attach the console to a store (read-only)")
    console.add_argument("--db", required=True, help=DB_HELP)
    console.add_argument(
        "--service",
        default=os.environ.get("OMNICONSOLE_SERVICE_URL") or None,
        metavar="URL",
        help="the running `serve` (e.g. http://127.0.0.1:8787) for agent actions; the key"
        " comes from OMNICONSOLE_OPERATOR_KEY (default: $OMNICONSOLE_SERVICE_URL)",
    )
    console.add_argument(
        "--agent",
        default=os.environ.get("OMNICONSOLE_AGENT") or os.environ.get("USER") or None,
        help="who agent actions are recorded as (default: $OMNICONSOLE_AGENT, else $USER)",
    )

    demo = sub.add_parser("demo", help="replay the bundled sample inside the console")
    demo.add_argument(
        "--log", type=Path, default=None, help="event log (default: the bundled sample)"
    )
    demo.add_argument("--db", default="out/demo.db", help=DB_HELP)
    demo.add_argument("--config", type=Path, default=None)

    serve = sub.add_parser("serve", help="run live: HTTP ingest, webhooks, real channels")
    serve.add_argument("--config", type=Path, default=None)
    serve.add_argument("--db", required=True, help=DB_HELP)
    serve.add_argument(
        "--ray",
        default=None,
        metavar="ADDRESS",
        help="be one stateless ingest process of a Ray cluster: route events to the"
        " store's live partitions there (started by the first); see docs/cluster.md",
    )
    serve.add_argument(
        "--partitions", type=_partitions, default=None, metavar="N",
        help="with --ray: live partitions, if none run yet (default: one per node)",
    )  # fmt: skip
    serve.add_argument(
        "--stop", action="store_true", help="with --ray: stop the store's live partitions"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8787)

    cmp = sub.add_parser(
        "compare", help="replay one log under two configs at once and show the differences"
    )
    cmp.add_argument("log", type=Path, help="event log, JSON Lines (SPEC §2)")
    cmp.add_argument(
        "--config",
        type=Path,
        action="append",
        required=True,
        metavar="DIR",
        help="config folder; give it twice: A, then B",
    )
    cmp.add_argument("--until", type=_timestamp, default=None, help="stop the clock at ISO_TIME")
    cmp.add_argument("--json", action="store_true", help="print the comparison as JSON")
    cmp.add_argument(
        "--top", type=int, default=5, metavar="N", help="customers to show that differ most"
    )
    cmp.add_argument(
        "--partitions",
        type=_partitions,
        default=None,
        metavar="N",
        help="engine processes per replay (default: one per CPU, as replay)",
    )

    exp = sub.add_parser(
        "explain", help="why a message was sent, deferred, suppressed, held out or never created"
    )
    exp.add_argument("target", metavar="MESSAGE_ID|CUSTOMER", help="a message id or a customer")
    exp.add_argument("--db", required=True, help=DB_HELP)
    exp.add_argument("--journey", default=None, help="only this journey (for a customer)")
    exp.add_argument("--json", action="store_true", help="print the chain as JSON")

    inbox = sub.add_parser("inbox", help="list a customer's in-app inbox")
    inbox.add_argument("customer")
    inbox.add_argument("--db", required=True, help=DB_HELP)
    return parser


def print_report_table(report: dict[str, Any], without_goal: frozenset[str] = frozenset()) -> None:
    """The report as a few readable tables (`without_goal`: journeys that have no rate)."""
    ev = report["events"]
    print("events   " + "  ".join(f"{k} {v}" for k, v in ev.items()))
    print()
    print(f"{'journey':<24}{'entered':>9}{'converted':>11}{'rate':>8}")
    for name, j in report["journeys"].items():
        if name in without_goal:
            print(f"{name:<24}{j['entered']:>9}{'—':>11}{'—':>8}")
        else:
            rate = f"{j['conversion_rate']:.1%}"
            print(f"{name:<24}{j['entered']:>9}{j['converted']:>11}{rate:>8}")
    print()
    print(f"{'channel':<12}{'sent':>8}{'deferred':>10}{'suppressed':>12}{'failed':>8}")
    for name, c in report["channels"].items():
        print(f"{name:<12}{c['sent']:>8}{c['deferred']:>10}{c['suppressed']:>12}{c['failed']:>8}")
    print()
    print(
        "suppressed by reason: "
        + (", ".join(f"{k} {v}" for k, v in report["suppressed_by_reason"].items()) or "none")
    )
    print(f"handoffs: {report['handoffs']}")
    if "outcomes" in report:
        from omniconsole.engine.outcomes_text import outcomes_table

        print()
        print(outcomes_table(report["outcomes"]), end="")


def _replay(args: argparse.Namespace) -> int:
    from omniconsole.cli_progress import ReplayBar, wants_bar
    from omniconsole.domain.config import load_config, shipped_config_dir
    from omniconsole.engine.replay import ReplayOptions, run_replay

    watcher = None if args.tui else ReplayBar(bar=wants_bar(args.quiet), say=not args.quiet)
    options = ReplayOptions(
        log=args.log,
        db=args.db,
        ledger=args.ledger,
        report=args.report,
        rejects=args.rejects,
        config_dir=args.config,
        until=args.until,
        resume=args.resume,
        checkpoint_events=max(1, args.checkpoint_every),
        max_active=None if args.max_active is None else max(1, args.max_active),
        partitions=args.partitions or (0 if args.ray else default_partitions()),
        ray=args.ray,
        watcher=watcher,
    )
    if args.tui:
        from omniconsole.tui import run_replay_console

        run_replay_console(options)
        return 0
    report = run_replay(options)
    if args.table:
        config = load_config(args.config or shipped_config_dir())
        print_report_table(report, frozenset(j.name for j in config.journeys if not j.goal_event))
    return 0


def _generate(args: argparse.Namespace) -> int:
    from omniconsole.cli_progress import GenerateBar, wants_bar
    from omniconsole.domain.config import load_config, shipped_config_dir
    from omniconsole.domain.generator import (
        PlantedLift,
        default_events_per_customer,
        parse_plant_lift,
        write_log,
    )

    if args.customers < 1 or args.days < 1:
        raise UsageError("--customers and --days must be at least 1")
    plant = None
    if args.plant_lift:
        try:
            effects = parse_plant_lift(args.plant_lift)
            plant = PlantedLift(load_config(args.config or shipped_config_dir()), effects)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    per_customer = args.events_per_customer or default_events_per_customer(args.days)
    expected = int(args.customers * per_customer)
    bar = GenerateBar(expected, bar=wants_bar(args.quiet))
    try:
        # stdout and --out get the same bytes: both are written by `write_log`
        if args.out is None:
            write_log(sys.stdout.buffer, args.customers, args.days, args.seed, args.start,
                      events_per_customer=args.events_per_customer, mix=args.mix,
                      progress=bar, plant=plant)  # fmt: skip
            sys.stdout.flush()
            return 0
        try:
            n = write_log(args.out, args.customers, args.days, args.seed, args.start,
                          events_per_customer=args.events_per_customer, mix=args.mix,
                          progress=bar, plant=plant)  # fmt: skip
        except OSError as exc:
            reason = exc.strerror or str(exc)
            if isinstance(exc, FileNotFoundError):
                reason = f"folder {args.out.parent} does not exist"
            raise UsageError(f"cannot write {args.out}: {reason}") from None
    finally:
        bar.close()
    if not args.quiet:
        print(f"wrote {n} events to {args.out}", file=sys.stderr)
    return 0


def _operator(args: argparse.Namespace) -> Any:
    """The running service's agent actions for the console (None without --service)."""
    if not args.service:
        return None
    from omniconsole.adapters.http.operator_client import OperatorClient

    key = os.environ.get("OMNICONSOLE_OPERATOR_KEY", "").strip()
    if not key:
        raise UsageError(
            "--service needs the operator key: set OMNICONSOLE_OPERATOR_KEY to the key"
            " `serve` was started with"
        )
    return OperatorClient(args.service, key, args.agent or "agent")


def _compare(args: argparse.Namespace) -> int:
    from omniconsole.engine.compare import CompareOptions, compare
    from omniconsole.engine.compare_text import format_comparison

    if len(args.config) != 2:
        raise UsageError(f"compare needs --config twice (A and B), got {len(args.config)}")
    options = CompareOptions(
        log=args.log,
        configs=(args.config[0], args.config[1]),
        until=args.until,
        partitions=args.partitions or default_partitions(),
        top=max(0, args.top),
    )
    result = compare(options)
    if args.json:
        import orjson

        sys.stdout.buffer.write(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        sys.stdout.write(format_comparison(result))
    return 0


def _explain(args: argparse.Namespace) -> int:
    from omniconsole.engine.explain import ExplainError, explain
    from omniconsole.engine.explain_text import explain_text

    try:
        data = explain(args.db, args.target, args.journey)
    except ExplainError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        import orjson

        sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        sys.stdout.write(explain_text(data))
    return 0 if data["verified"] else 1


def _inbox(args: argparse.Namespace) -> int:
    from omniconsole.adapters.store import store_at

    store = store_at(args.db)
    if not store.exists():
        raise UsageError(f"store not found: {store.describe()}")
    reader = store.reader()  # a partitioned store reads as one
    try:
        items = reader.inbox(args.customer)
    finally:
        reader.close()
    if not items:
        print(f"no in-app messages for {args.customer}")
        return 0
    for item in items:
        print(f"{item.at}  {'  ' if item.read else '● '}{item.journey}.{item.step}  {item.subject}")
        print(f"    {item.body}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status. Errors are one line on stderr, no traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from omniconsole.actors.runtime import ActorFailure
    from omniconsole.adapters.store import StoreError, is_postgres_url
    from omniconsole.engine.cluster.connect import ClusterError
    from omniconsole.engine.partitioned import PartitionFailure
    from omniconsole.engine.replay import ReplayError

    try:
        if args.command == "replay":
            return _replay(args)
        if args.command == "generate":
            return _generate(args)
        if args.command == "inbox":
            return _inbox(args)
        if args.command == "compare":
            return _compare(args)
        if args.command == "explain":
            return _explain(args)
        if args.command == "console":
            from omniconsole.tui import run_console

            run_console(args.db if is_postgres_url(args.db) else Path(args.db), _operator(args))
            return 0
        if args.command == "demo":
            from omniconsole.tui import run_demo

            if args.log is None:
                args.log = bundled_sample()
            if not args.log.is_file():
                raise UsageError(f"log file not found: {args.log}")
            if not is_postgres_url(args.db):
                Path(args.db).parent.mkdir(parents=True, exist_ok=True)
            run_demo(args.log, args.db if is_postgres_url(args.db) else Path(args.db), args.config)
            return 0
        if args.command == "serve":
            from omniconsole.engine.serve import run_serve

            return run_serve(args)
    except (ClusterError, ConfigError, ReplayError, StoreError, UsageError) as exc:
        print(f"omniconsole: error: {exc}", file=sys.stderr)
        return 2
    except (ActorFailure, PartitionFailure) as exc:
        print(
            f"omniconsole: engine failed: {exc} (the store keeps its last checkpoint:"
            " run the same command with --resume)",
            file=sys.stderr,
        )
        return 1
    except BrokenPipeError:
        # the reader went away (`... --table | head`): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("omniconsole: interrupted (a replay continues with --resume)", file=sys.stderr)
        return 130
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
