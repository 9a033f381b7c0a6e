"""The words and tables `omniconsole compare` prints (the data comes from `compare`)."""

from __future__ import annotations

from itertools import zip_longest
from typing import Any

_COL = 50  # width of one run's column in the side-by-side ledger lines


def _delta(a: float, b: float) -> str:
    diff = b - a
    return "" if diff == 0 else f"{diff:+g}"


def _table(title: str, header: str, rows: list[tuple[str, Any, Any]]) -> list[str]:
    out = [title, f"  {header:<40}{'A':>10}{'B':>10}{'B-A':>10}"]
    for label, a, b in rows:
        out.append(f"  {label:<40}{a:>10}{b:>10}{_delta(a, b):>10}")
    if not rows:
        out.append("  (none)")
    return [*out, ""]


def _short(line: dict[str, Any]) -> str:
    at = line["at"].replace("T", " ").removesuffix("Z")[:16]
    what = line["outcome"]
    if line["channel"]:
        what += f" {line['channel']}"
    if line["reason"]:
        what += f" ({line['reason']})"
    return f"{at} {what}"


def _side_by_side(entry: dict[str, Any]) -> list[str]:
    order: list[str] = []
    by_message: dict[str, tuple[list[str], list[str]]] = {}
    for side, lines in ((0, entry["a"]), (1, entry["b"])):
        for line in lines:
            message = line["message_id"]
            if message not in by_message:
                by_message[message] = ([], [])
                order.append(message)
            by_message[message][side].append(_short(line))
    out = [f"  {entry['customer']}: {entry['difference']} ledger lines differ"]
    for message in order:
        left, right = by_message[message]
        mark = "  " if left == right else "≠ "
        out.append(f"    {mark}{message}")
        for a, b in zip_longest(left, right, fillvalue="—"):
            out.append(f"        {a:<{_COL}}{b}")
    return out


def format_comparison(result: dict[str, Any]) -> str:
    """The comparison as the terminal shows it."""
    replays = result["replays"]
    out = [
        f"A: {result['configs']['a']}",
        f"B: {result['configs']['b']}",
        f"log: {result['log']}  (both replays at once: {replays['wall_seconds']} s wall; "
        f"A {replays['a']['seconds']} s, B {replays['b']['seconds']} s,"
        f" {replays['partitions_each']} partition(s) each)",
        "",
    ]
    out += _table(
        "Decisions per channel and outcome",
        "channel / outcome",
        [(f"{d['channel']} {d['outcome']}", d["a"], d["b"]) for d in result["decisions"]],
    )
    out += _table(
        "Deferrals, suppressions and holdouts per reason",
        "outcome / reason",
        [(f"{r['outcome']} {r['reason']}", r["a"], r["b"]) for r in result["reasons"]],
    )
    out += _table(
        "Customers who hit each cap",
        "cap",
        [(cap, n["a"], n["b"]) for cap, n in result["customers_capped"].items()],
    )
    weekly = result["messages_per_customer_week"]
    rows = [
        (f"{bucket} sent", weekly["a"]["customer_weeks"][bucket],
         weekly["b"]["customer_weeks"][bucket])
        for bucket in weekly["a"]["customer_weeks"]
    ]  # fmt: skip
    rows += [("mean", weekly["a"]["mean"], weekly["b"]["mean"]),
             ("most", weekly["a"]["max"], weekly["b"]["max"])]  # fmt: skip
    out += _table("Messages per customer per week (customer-weeks)", "messages", rows)
    out += _table("Handoffs", "", [("handoffs", result["handoffs"]["a"], result["handoffs"]["b"])])
    rows = []
    for name, j in result["journeys"].items():
        a, b = j["a"] or {}, j["b"] or {}
        rows.append((f"{name} entered", a.get("entered", 0), b.get("entered", 0)))
        rows.append((f"{name} converted", a.get("converted", 0), b.get("converted", 0)))
    out += _table("Conversions per journey", "journey", rows)
    for side in ("a", "b"):
        outcomes = result["outcomes"][side]
        for name, entry in (outcomes or {}).get("journeys", {}).items():
            lift = entry["lift"]
            if lift is not None:
                low, high = lift["ci95"]
                out.append(
                    f"{side.upper()}: {name} lift {lift['absolute'] * 100:+.1f} pp"
                    f" (95% interval {low * 100:+.1f} to {high * 100:+.1f} pp)"
                )
    if any(result["outcomes"].values()):
        out.append("")
    differing = result["customers_differing"]
    out.append(f"Customers whose decisions differ: {differing}")
    if result["most_different"]:
        out.append(f"The {len(result['most_different'])} that differ most (A left, B right):")
        for entry in result["most_different"]:
            out += _side_by_side(entry)
    return "\n".join(out) + "\n"
