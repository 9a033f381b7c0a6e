"""Held-out end-to-end scenarios: replay each log and compare with the ledger SPEC.md implies.

Every `scenarios/NAME.jsonl` with a `scenarios/NAME.expected.jsonl` is replayed with
`omniconsole replay` (shipped config). The ledger is compared line by line on the SPEC §6 keys,
ignoring `message_id` and any extra keys; `NAME.report.json` (optional) lists the report keys
that must match (a partial, nested object); `NAME.args.json` (optional) holds extra CLI arguments.
See `scenarios/README.md` for what each scenario pins and why.
"""

from __future__ import annotations

import difflib
import json
import math
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
KEYS = (
    "at",
    "customer",
    "journey",
    "step",
    "channel",
    "category",
    "outcome",
    "reason",
    "handoff_from",
)
HANDOFF_KEYS = ("channel", "action", "at")
TIMEOUT = 300


def scenario_names() -> list[str]:
    names = []
    for log in sorted(SCENARIOS.glob("*.jsonl")):
        if log.name.endswith(".expected.jsonl"):
            continue
        if (SCENARIOS / f"{log.stem}.expected.jsonl").exists():
            names.append(log.stem)
    return names


@dataclass
class Replay:
    returncode: int
    stdout: str
    stderr: str
    ledger_text: str | None
    report: Any
    rejects_text: str | None

    def describe(self) -> str:
        return (
            f"exit code {self.returncode}\n--- stdout ---\n{self.stdout[-3000:]}\n"
            f"--- stderr ---\n{self.stderr[-3000:]}"
        )

    def ledger(self) -> list[dict[str, Any]]:
        assert self.ledger_text is not None, f"no ledger written\n{self.describe()}"
        return [json.loads(line) for line in self.ledger_text.splitlines() if line.strip()]


def run_replay(name: str, out: Path) -> Replay:
    out.mkdir(parents=True, exist_ok=True)
    ledger, report, rejects = out / "l.jsonl", out / "r.json", out / "rej.jsonl"
    args_file = SCENARIOS / f"{name}.args.json"
    extra = json.loads(args_file.read_text()) if args_file.exists() else []
    cmd = [
        sys.executable,
        "-m",
        "omniconsole",
        "replay",
        str(SCENARIOS / f"{name}.jsonl"),
        "--db",
        str(out / "x.db"),
        "--ledger",
        str(ledger),
        "--report",
        str(report),
        "--rejects",
        str(rejects),
        *extra,
    ]
    proc = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    return Replay(
        returncode=proc.returncode,
        stdout=proc.stdout,
        stderr=proc.stderr,
        ledger_text=ledger.read_text() if ledger.exists() else None,
        report=json.loads(report.read_text()) if report.exists() else None,
        rejects_text=rejects.read_text() if rejects.exists() else None,
    )


_CACHE: dict[str, Replay] = {}


@pytest.fixture(scope="session")
def replayed(tmp_path_factory: pytest.TempPathFactory):
    def get(name: str) -> Replay:
        if name not in _CACHE:
            _CACHE[name] = run_replay(name, tmp_path_factory.mktemp(name))
        return _CACHE[name]

    return get


def project(line: dict[str, Any]) -> dict[str, Any]:
    """The SPEC §6 keys of a ledger line (message_id and extra keys dropped)."""
    out = {k: line.get(k, "<missing>") for k in KEYS}
    hf = out["handoff_from"]
    if isinstance(hf, dict):
        out["handoff_from"] = {k: hf.get(k, "<missing>") for k in HANDOFF_KEYS}
    return out


def fmt(line: dict[str, Any]) -> str:
    hf = line["handoff_from"]
    if hf is None:
        hf_s = "-"
    elif isinstance(hf, dict):
        hf_s = f"{hf['channel']}/{hf['action']}@{hf['at']}"
    else:
        hf_s = repr(hf)
    step = f"{line['journey']}.{line['step']}"
    reason = "-" if line["reason"] is None else str(line["reason"])
    return (
        f"{line['at']} {line['customer']!s:<12} {step:<34} {line['channel']!s:<8} "
        f"{line['category']!s:<13} {line['outcome']!s:<10} {reason:<28} {hf_s}"
    )


def ledger_diff(expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> str:
    exp = [fmt(x) for x in expected]
    act = [fmt(x) for x in actual]
    diff = difflib.unified_diff(exp, act, "expected", "actual", lineterm="", n=2)
    full = ["", "=== expected ===", *exp, "=== actual ===", *act, "=== diff ===", *diff]
    mismatched = [
        f"line {i + 1}: {k}: expected {e.get(k)!r}, got {a.get(k)!r}"
        for i, (e, a) in enumerate(zip(expected, actual, strict=False))
        for k in KEYS
        if e.get(k) != a.get(k)
    ]
    if mismatched and len(expected) == len(actual):
        full += ["=== first differing keys ===", *mismatched[:15]]
    return "\n".join(full)


def subset_mismatches(expected: Any, actual: Any, path: str = "report") -> list[str]:
    """Paths where `actual` does not match `expected` (only keys present in `expected`)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {actual!r}"]
        out: list[str] = []
        for key, value in expected.items():
            if key not in actual:
                out.append(f"{path}.{key}: missing (expected {value!r})")
            else:
                out += subset_mismatches(value, actual[key], f"{path}.{key}")
        return out
    if isinstance(expected, float) or isinstance(actual, float):
        ok = (
            isinstance(actual, int | float)
            and not isinstance(actual, bool)
            and math.isclose(float(expected), float(actual), rel_tol=1e-9, abs_tol=1e-9)
        )
        return [] if ok else [f"{path}: expected {expected!r}, got {actual!r}"]
    if expected != actual or type(expected) is not type(actual):
        return [f"{path}: expected {expected!r}, got {actual!r}"]
    return []


def read_expected(name: str) -> list[dict[str, Any]]:
    text = (SCENARIOS / f"{name}.expected.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("name", scenario_names())
def test_ledger(name: str, replayed) -> None:
    result = replayed(name)
    assert result.returncode == 0, f"replay failed\n{result.describe()}"
    expected = [project(x) for x in read_expected(name)]
    actual = [project(x) for x in result.ledger()]
    if expected != actual:
        pytest.fail(
            f"ledger of scenario {name!r} differs from SPEC "
            f"({len(expected)} expected lines, {len(actual)} actual); "
            f"see tests/e2e/scenarios/README.md{ledger_diff(expected, actual)}",
            pytrace=False,
        )


@pytest.mark.parametrize(
    "name", [n for n in scenario_names() if (SCENARIOS / f"{n}.report.json").exists()]
)
def test_report(name: str, replayed) -> None:
    result = replayed(name)
    assert result.returncode == 0, f"replay failed\n{result.describe()}"
    assert result.report is not None, f"no report written\n{result.describe()}"
    expected = json.loads((SCENARIOS / f"{name}.report.json").read_text())
    problems = subset_mismatches(expected, result.report)
    if problems:
        pytest.fail(
            f"report of scenario {name!r} differs:\n  "
            + "\n  ".join(problems)
            + f"\nfull report:\n{json.dumps(result.report, indent=2, sort_keys=True)}",
            pytrace=False,
        )


@pytest.mark.parametrize(
    "name", [n for n in scenario_names() if (SCENARIOS / f"{n}.report.json").exists()]
)
def test_rejects_file(name: str, replayed) -> None:
    """Every rejected line is written to the rejects file (one line each), none silently lost."""
    expected = json.loads((SCENARIOS / f"{name}.report.json").read_text())
    rejected = expected.get("events", {}).get("rejected")
    if rejected is None:
        pytest.skip("scenario does not pin events.rejected")
    result = replayed(name)
    text = result.rejects_text or ""
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == rejected, f"{len(lines)} lines in the rejects file:\n{text}"


# Scenarios whose deferred messages all reach a final line (no --until) and that include
# deferrals, re-sends after Message Failed and ordinary sends.
ID_SCENARIOS = [
    "walkthrough",
    "quiet_hours_channels",
    "deferred_redecided",
    "deferred_exited",
    "same_instant_order",
]


@pytest.mark.parametrize("name", ID_SCENARIOS)
def test_message_ids(name: str, replayed) -> None:
    """A message_id names one message: its deferred line(s) then exactly one final line."""
    result = replayed(name)
    assert result.returncode == 0, f"replay failed\n{result.describe()}"
    ledger = result.ledger()
    by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in ledger:
        mid = line.get("message_id")
        assert mid not in (None, ""), f"ledger line without message_id: {line}"
        by_id[json.dumps(mid)].append(line)
    for mid, lines in by_id.items():
        outcomes = [x["outcome"] for x in lines]
        assert outcomes[-1] != "deferred" and all(o == "deferred" for o in outcomes[:-1]), (
            f"message_id {mid}: expected deferred line(s) then one final line, got {outcomes}"
        )
        idents = {(x["customer"], x["journey"], x["step"]) for x in lines}
        assert len(idents) == 1, f"message_id {mid} shared by different steps: {idents}"
    deferred = sum(1 for x in ledger if x["outcome"] == "deferred")
    assert deferred > 0
    finals = len(ledger) - deferred
    assert len(by_id) == finals, "each final decision must have its own message_id"


def test_failover_resend_is_a_new_message(replayed) -> None:
    """The re-send after Message Failed is a new message: a message_id of its own."""
    result = replayed("message_failed_fallback")
    assert result.returncode == 0, f"replay failed\n{result.describe()}"
    ledger = result.ledger()
    ids = [json.dumps(x.get("message_id")) for x in ledger]
    assert all(x.get("message_id") not in (None, "") for x in ledger)
    assert len(set(ids)) == len(ids), f"message ids not unique: {ids}"


def test_replay_is_deterministic(tmp_path: Path) -> None:
    """Same input, same config: the same ledger, byte for byte (message ids included)."""
    first = run_replay("walkthrough", tmp_path / "one")
    second = run_replay("walkthrough", tmp_path / "two")
    assert first.returncode == 0, first.describe()
    assert second.returncode == 0, second.describe()
    assert first.ledger_text is not None
    assert first.ledger_text == second.ledger_text


def test_deferred_line_pairs_with_its_own_final_line(replayed) -> None:
    """Two deferred alerts fall due together: each deferred line shares its id with its final line."""
    result = replayed("same_instant_order")
    assert result.returncode == 0, f"replay failed\n{result.describe()}"
    ledger = result.ledger()

    def mid(customer: str, at: str, outcome: str) -> Any:
        found = [
            x["message_id"]
            for x in ledger
            if x["customer"] == customer and x["at"] == at and x["outcome"] == outcome
        ]
        assert len(found) == 1, f"{customer} {at} {outcome}: {found}"
        return found[0]

    morning = "2026-02-03T08:00:00Z"
    # si-1: the alert deferred at 22:00 is the one suppressed at 08:00 (the 08:00 event's is sent)
    assert mid("si-1", "2026-02-02T22:00:00Z", "deferred") == mid("si-1", morning, "suppressed")
    # si-2: set first, decided first -> the 22:00 one is sent, the 23:00 one suppressed
    assert mid("si-2", "2026-02-02T22:00:00Z", "deferred") == mid("si-2", morning, "sent")
    assert mid("si-2", "2026-02-02T23:00:00Z", "deferred") == mid("si-2", morning, "suppressed")
