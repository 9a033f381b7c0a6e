"""The report's `outcomes` section as the table `replay --table` prints."""

from __future__ import annotations

from typing import Any


def _group(g: dict[str, Any]) -> str:
    return f"{g['converted']}/{g['entered']} {g['rate']:>6.1%}"


def _lift(lift: dict[str, Any] | None) -> str:
    if lift is None:
        return f"{'-':>9}{'(a group is empty)':>20}"
    low, high = lift["ci95"]
    interval = f"[{low * 100:+.1f}, {high * 100:+.1f}] pp"
    excludes = "yes" if lift["excludes_zero"] else "no"
    return f"{lift['absolute'] * 100:>+6.1f} pp{interval:>20}  {excludes}"


def outcomes_table(outcomes: dict[str, Any]) -> str:
    """Per journey and variant: treatment against control, and the lift with its interval."""
    lines = [
        "lift = treatment rate - control rate in percentage points (pp); 95% interval: "
        + outcomes["method"],
        f"{'journey / variant':<26}{'treatment':>18}{'control':>18}{'lift':>9}"
        f"{'95% interval':>20}  excludes 0",
    ]

    def row(name: str, entry: dict[str, Any]) -> None:
        lines.append(
            f"{name:<26}{_group(entry['treatment']):>18}{_group(entry['control']):>18}"
            + _lift(entry["lift"])
        )

    for journey, entry in outcomes["journeys"].items():
        row(journey, entry)
        for variant, v in entry.get("variants", {}).items():
            row(f"  variant {variant}", v)
    return "\n".join(lines) + "\n"
