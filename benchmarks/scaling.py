"""The scaling table: one log through every engine and store, each run its own process.

    .venv/bin/python benchmarks/scaling.py --log /path/to/bench1m.jsonl --out scaling.jsonl

Runs `replay_throughput.py` on the same log with 1, 2 and 4 local partitions and on
simulated 1-, 2- and 4-node Ray clusters (one partition per node), each on SQLite and
on PostgreSQL (a throwaway pgserver, default durable settings), back to back; appends
each run's figures to `--out` as a JSON line and prints the table in Markdown. Memory is
the peak of RSS (and PSS, which splits shared pages) summed over every process of the
run: the driver, partition processes, the Ray cluster's processes, PostgreSQL's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

RUNS: list[tuple[str, list[str]]] = [
    *((f"{n} local partition{'s' if n > 1 else ''}", ["--partitions", str(n)]) for n in (1, 2, 4)),
    *((f"{n}-node Ray cluster", ["--ray-nodes", str(n)]) for n in (1, 2, 4)),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("scaling.jsonl"))
    parser.add_argument("--only", help="run only the rows whose name contains this")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--expect-ledger", type=Path, help="every run's ledger must be this")
    args = parser.parse_args(argv)
    rows = []
    for name, flags in RUNS:
        if args.only and args.only not in name:
            continue
        for store in args.stores.split(","):
            extra = ["--pg"] if store == "postgresql" else []
            before = args.out.read_text().count("\n") if args.out.exists() else 0
            cmd = [sys.executable, str(HERE / "replay_throughput.py"), "--log", str(args.log),
                   *flags, *extra, "--json", str(args.out)]  # fmt: skip
            if args.expect_ledger:
                cmd += ["--expect-ledger", str(args.expect_ledger)]
            print(f"== {name}, {store}", flush=True)
            subprocess.run(cmd, check=True)
            figures = json.loads(args.out.read_text().splitlines()[before])
            rows.append((name, store, figures))
    print(
        "\n| run | store | events/s | peak RSS, all processes | peak PSS | of which PostgreSQL"
        " (RSS) | processes | ledger | load average (1 min, before → after) |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
    for name, store, f in rows:
        same = {True: "same", False: "DIFF", None: "—"}[f.get("ledger_as_expected")]
        print(f"| {name} | {store} | {f['events_per_s']:,.0f} | {f['peak_rss_all_mb']:,.0f} MB"
              f" | {f['peak_pss_all_mb']:,.0f} MB | {f['peak_rss_postgres_mb']:,.0f} MB"
              f" | {f['processes']} | {same} | {f.get('load_average_before', [0])[0]:.1f}"
              f" → {f['load_average'][0]:.1f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
