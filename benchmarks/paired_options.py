"""Two replay settings compared side by side: both replay the same log at the same moment.

    .venv/bin/python benchmarks/paired_options.py LOG '{"shards": 2}' '{"shards": 1}'
    .venv/bin/python benchmarks/paired_options.py LOG '{"batch_events": 4000}' '{}' --rounds 3

Each argument after the log is a JSON object of `ReplayOptions` fields (`{}`: the
defaults). Every round starts one fresh process per setting at the same time, each
replaying the log into a store of its own, and prints their wall and CPU seconds; at the
end, the sums, the second setting's ratio to the first, and whether their ledgers and
reports are byte-identical (exit status 1 if not).

Why side by side: this 2-vCPU VM's speed drifts up to 2x within minutes (other tenants),
so runs one after the other compare the drift, not the settings. Run at the same moment,
both meet the same machine; on a 2-core machine each gets about one core, so this
suits in-process (`partitions` 1) settings best.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from engine_vs_reference import _cpu_seconds

from omniconsole.engine.replay import ReplayOptions, run_replay


def child(log: Path, fields: str, out: Path) -> None:
    """One replay, run in a fresh process (`--child`): prints its wall and CPU seconds."""
    cpu = _cpu_seconds(resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    run_replay(
        ReplayOptions(
            log=log, db=out / "replay.db", ledger=out / "ledger.jsonl",
            report=out / "report.json", **json.loads(fields),
        )
    )  # fmt: skip
    wall = time.perf_counter() - started
    cpu = _cpu_seconds(resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN) - cpu
    print(json.dumps({"wall": wall, "cpu": cpu}))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("log", type=Path)
    parser.add_argument("first", help="JSON object of ReplayOptions fields")
    parser.add_argument("second", help="JSON object of ReplayOptions fields")
    parser.add_argument("--rounds", type=int, default=2)
    return parser.parse_args(argv)


def one_round(log: Path, settings: list[str], outs: list[Path]) -> list[dict[str, float]]:
    procs = []
    for fields, out in zip(settings, outs, strict=True):  # a fresh store each: not resumed
        procs.append(
            subprocess.Popen(
                [sys.executable, __file__, "--child", str(log.resolve()), fields, str(out)],
                stdout=subprocess.PIPE, text=True,
            )
        )  # fmt: skip
    results = []
    for proc in procs:
        stdout, _ = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"a replay failed (exit status {proc.returncode})")
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child(Path(argv[1]), argv[2], Path(argv[3]))
        return 0
    args = parse_args(argv)
    settings = [args.first, args.second]
    for fields in settings:
        if not isinstance(json.loads(fields), dict):
            raise SystemExit(f"not a JSON object of ReplayOptions fields: {fields}")
    with tempfile.TemporaryDirectory(prefix="paired-") as tmp:
        outs = [Path(tmp) / "first", Path(tmp) / "second"]
        for out in outs:
            out.mkdir()
        sums = [{"wall": 0.0, "cpu": 0.0} for _ in settings]
        for round_no in range(args.rounds):
            for index, result in enumerate(one_round(args.log, settings, outs)):
                name = ("first", "second")[index]
                print(f"round {round_no}  {name:<7} wall {result['wall']:8.2f} s"
                      f"  CPU {result['cpu']:8.2f} s", flush=True)  # fmt: skip
                for key in ("wall", "cpu"):
                    sums[index][key] += result[key]
        same = all(
            filecmp.cmp(outs[0] / name, outs[1] / name, shallow=False)
            for name in ("ledger.jsonl", "report.json")
        )
    print(f"\nfirst  {args.first}: wall {sums[0]['wall']:.1f} s, CPU {sums[0]['cpu']:.1f} s")
    print(f"second {args.second}: wall {sums[1]['wall']:.1f} s, CPU {sums[1]['cpu']:.1f} s")
    print(f"second / first: wall {sums[1]['wall'] / sums[0]['wall']:.3f}x,"
          f" CPU {sums[1]['cpu'] / sums[0]['cpu']:.3f}x")  # fmt: skip
    print("ledgers and reports identical" if same else "ledgers or reports DIFFER")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
