"""How often the report's 95% lift interval covers a planted lift, over many seeds.

    .venv/bin/python benchmarks/lift_coverage.py                 # 20 seeds, 3000 customers
    .venv/bin/python benchmarks/lift_coverage.py --seeds 100 --effect 0.05

Each seed writes a log with `--plant-lift onboarding=EFFECT` under the example config
(`config/examples/holdouts`), replays it, and reads the onboarding lift. A 95% interval
should cover the planted effect in about 95 of 100 seeds (Newcombe's method is close
to nominal); the test suite checks one seed, this checks the rate. Prints each seed's
interval, the coverage, and how often the interval excluded zero (the power).
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from omniconsole.domain.config import load_config, shipped_config_dir
from omniconsole.domain.generator import PlantedLift, write_log
from omniconsole.engine.replay import ReplayOptions, run_replay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--effect", type=float, default=0.08)
    args = parser.parse_args()
    example = shipped_config_dir() / "examples" / "holdouts"
    plant = PlantedLift(load_config(example), {"onboarding": args.effect})
    covered = excluded = 0
    with tempfile.TemporaryDirectory(prefix="lift-coverage-") as tmp:
        folder = Path(tmp)
        for seed in range(1, args.seeds + 1):
            log = folder / f"log-{seed}.jsonl"
            write_log(log, args.customers, 14, seed, datetime(2026, 3, 2, tzinfo=UTC),
                      events_per_customer=4, plant=plant)  # fmt: skip
            report = run_replay(
                ReplayOptions(log, folder / f"{seed}.db", folder / f"{seed}.ledger",
                              folder / f"{seed}.json", config_dir=example)
            )  # fmt: skip
            lift = report["outcomes"]["journeys"]["onboarding"]["lift"]
            low, high = lift["ci95"]
            hit = low <= args.effect <= high
            covered += hit
            excluded += lift["excludes_zero"]
            print(f"seed {seed:>3}: lift {lift['absolute']:+.4f} [{low:+.4f}, {high:+.4f}]"
                  f" {'covers' if hit else 'MISSES'}", flush=True)  # fmt: skip
            for path in folder.iterdir():
                path.unlink()
    print(f"coverage {covered}/{args.seeds} = {covered / args.seeds:.0%} (nominal 95%);"
          f" interval excluded zero in {excluded}/{args.seeds}")  # fmt: skip


if __name__ == "__main__":
    main()
