"""Event logs and replays shared by the PostgreSQL and cluster tests.

`write_tricky_log` is a generated log plus what makes ordering and storing hard: late
lines, a message id reused by another customer, bad lines, and customers whose ids sort
differently under a language collation than by their bytes (SQLite's order, which the
ledger must keep on every store).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from omniconsole.domain.generator import write_log
from omniconsole.engine.replay import ReplayOptions, run_replay

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "sample.jsonl"
OUTPUTS = ("ledger.jsonl", "report.json", "rejects.jsonl")
#: ids whose byte order differs from en_US order (`cust 1` < `cust-10` < `cust-9` ...)
AWKWARD_CUSTOMERS = ("Cust-a", "cust_a", "cust-é", "émile", "cust 1", "cust-10", "cust-9", "CUST-b")


def signups_at_one_instant(stamp: str = "2026-03-10T09:00:00Z") -> list[bytes]:
    """Sign-ups of the awkward customers at the same instant: the ledger orders their
    welcome decisions by customer id alone."""
    lines = []
    for k, customer in enumerate(AWKWARD_CUSTOMERS):
        lines.append(orjson.dumps({
            "type": "identify", "userId": customer, "timestamp": stamp,
            "traits": {"email": f"awkward{k}@example.com", "phone": f"+1555000{k:04d}"},
            "messageId": f"awkward-id-{k}",
        }))  # fmt: skip
        lines.append(orjson.dumps({
            "type": "track", "userId": customer, "event": "Signed Up", "timestamp": stamp,
            "properties": {"source": "web"}, "messageId": f"awkward-su-{k}",
        }))  # fmt: skip
    return lines


def write_tricky_log(path: Path, customers: int = 400, per_customer: float = 12) -> Path:
    """A generated log with hard cases spliced into its middle (see the module doc)."""
    write_log(path, customers, 14, 5, datetime(2026, 3, 2, tzinfo=UTC),
              events_per_customer=per_customer)  # fmt: skip
    lines = path.read_bytes().splitlines()
    extra = [
        b'{"type":"track","userId":"late-1","event":"Signed Up","timestamp":"2026-03-02T00:00:01Z",'
        b'"traits":{"email":"late@example.com"},"messageId":"late-m1"}',
        b'{"type":"track","userId":"other-9","event":"Signed Up","timestamp":"2026-03-20T00:00:00Z",'
        b'"messageId":"late-m1"}',
        b"{not json",
        b'{"type":"track","userId":"x","timestamp":"2026-03-20T00:00:00Z"}',
    ]
    # the awkward sign-ups go where the clock is before their instant (none is late)
    before = next(i for i, line in enumerate(lines) if b'"2026-03-10T' in line)
    body = [*lines[:before], *signups_at_one_instant(), *lines[before:]]
    middle = len(body) // 2
    path.write_bytes(b"\n".join([*body[:middle], *extra, *body[middle:]]) + b"\n")
    return path


def replay(log: Path, out: Path, db: str | Path | None = None, partitions: int = 1,
           **extra: Any) -> dict[str, Any]:  # fmt: skip
    """Replay `log` into `db` (default: a SQLite file in `out`), outputs in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    return run_replay(options(log, out, db, partitions, **extra))


def options(log: Path, out: Path, db: str | Path | None = None, partitions: int = 1,
            **extra: Any) -> ReplayOptions:  # fmt: skip
    """The options `replay` uses."""
    out.mkdir(parents=True, exist_ok=True)
    return ReplayOptions(
        log=log,
        db=db if db is not None else out / "store.db",
        ledger=out / "ledger.jsonl",
        report=out / "report.json",
        rejects=out / "rejects.jsonl",
        partitions=partitions,
        **extra,
    )


def same_outputs(left: Path, right: Path) -> list[str]:
    """The output files whose bytes differ between two replays' folders."""
    return [n for n in OUTPUTS if (left / n).read_bytes() != (right / n).read_bytes()]
