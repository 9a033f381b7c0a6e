"""The console's data layer: each view's records from one committed cut of the store.

`ConsoleReader.read()` opens one read transaction and yields a `ConsoleCut`; the
status line and the visible view are both taken from it, so the clock the header
shows and every list agree. SQL lives in `console_queries`, running counts in
`console_aggregates`, words in the console itself (`omniconsole.tui.present`).

Used by one thread at a time (the console's poll worker). Nothing here imports textual.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from omniconsole.adapters.store.console_aggregates import LedgerCounts, LedgerFold
from omniconsole.adapters.store.console_queries import REQUIRED_TABLES, ConsoleConnection, StoreCut
from omniconsole.adapters.store.console_rows import (
    CHANNELS,
    OUTCOMES,
    CapsOverview,
    CapState,
    ChannelStats,
    CustomerCapUsage,
    CustomerMatch,
    CustomerRecord,
    FatiguedCustomer,
    FunnelStep,
    HandoffRow,
    JourneyStats,
    ReasonCount,
    StoreStatus,
)
from omniconsole.adapters.store.parts import PartsError
from omniconsole.domain.config import CapRule, JourneyDef, Policy
from omniconsole.domain.profile import Profile
from omniconsole.domain.timeutil import format_timestamp, parse_timestamp

__all__ = ["SERIES_HOURS", "ConsoleCut", "ConsoleReader"]

#: Sparkline buckets per series (simulated hours).
SERIES_HOURS = 48


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return parse_timestamp(text)
    except ValueError:
        return None


def series_hours(end: datetime | None) -> list[str]:
    """The last SERIES_HOURS simulated hours (`2026-03-02T10`) ending at `end`."""
    if end is None:
        return []
    end = end.replace(minute=0, second=0, microsecond=0)
    return [
        format_timestamp(end - timedelta(hours=i))[:13] for i in range(SERIES_HOURS - 1, -1, -1)
    ]


def _series(counts: Mapping[str, int], hours: Sequence[str]) -> tuple[int, ...]:
    return tuple(counts.get(h, 0) for h in hours)


@dataclass(slots=True)
class ConsoleCut:
    """One committed cut of the store, read as the console's views need it."""

    path: str
    cut: StoreCut
    fold: LedgerFold
    generation: int
    _counts: LedgerCounts | None = None

    def counts(self) -> LedgerCounts:
        """The running ledger counts, brought up to this cut (once per cut)."""
        if self._counts is None:
            self._counts = self.fold.refresh(self.cut, self.generation)
        return self._counts

    # ---------------------------------------------------------------- status

    def status(self) -> StoreStatus:
        """The run facts of this cut."""
        cut = self.cut
        if not cut.tables() >= REQUIRED_TABLES:
            return StoreStatus(self.path, "creating")
        meta = cut.meta(("mode", "status", "source", "clock", "checkpoint_line"))
        line = meta.get("checkpoint_line", "")
        return StoreStatus(
            self.path,
            "ready",
            mode=meta.get("mode"),
            status=meta.get("status"),
            source=meta.get("source"),
            clock=meta.get("clock") or None,
            checkpoint_line=int(line) if line.isdigit() else None,
            decisions=cut.decision_total(),
            customers=cut.customer_total(),
        )

    def clock(self) -> datetime | None:
        """The simulated (or, live, real) time of this cut."""
        return _time(self.cut.meta(("clock",)).get("clock"))

    def _hours(self, counts: LedgerCounts) -> list[str]:
        end = self.clock()
        if end is None and counts.last_hour is not None:
            end = _time(counts.last_hour + ":00:00Z")
        return series_hours(end)

    # ---------------------------------------------------------------- journeys

    def journeys(self) -> tuple[JourneyStats, ...]:
        """Every journey: entered / active (per step) / converted / exited, sends per hour."""
        cut, counts = self.cut, self.counts()
        definitions = cut.journey_defs()
        instances = cut.instance_counts()
        waiting = cut.waiting_per_step()
        order: list[tuple[str, JourneyDef | None, list[str]]] = [
            (d.name, d, [s.name for s in d.steps]) for d in definitions
        ]
        known = {d.name for d in definitions}
        seen_steps: dict[str, list[str]] = {}
        for journey, step, _ in counts.by_step:
            steps = seen_steps.setdefault(journey, [])
            if step not in steps:
                steps.append(step)
        for journey in sorted(set(instances) | set(seen_steps)):
            if journey not in known:
                order.append((journey, None, sorted(seen_steps.get(journey, []))))
        hours = self._hours(counts)
        entries = cut.entries_per_hour(hours[0]) if hours else {}
        out: list[JourneyStats] = []
        for name, definition, steps in order:
            status = instances.get(name, {})
            for extra in [*seen_steps.get(name, []), *waiting.get(name, {})]:
                if extra not in steps:
                    steps.append(extra)
            funnel = tuple(
                FunnelStep(
                    step=s,
                    waiting=waiting.get(name, {}).get(s, 0),
                    sent=counts.by_step[(name, s, "sent")],
                    deferred=counts.by_step[(name, s, "deferred")],
                    suppressed=counts.by_step[(name, s, "suppressed")],
                    failed=counts.by_step[(name, s, "failed")],
                )
                for s in steps
            )
            out.append(
                JourneyStats(
                    name=name,
                    definition=definition,
                    entered=sum(status.values()),
                    active=status.get("active", 0),
                    converted=status.get("converted", 0),
                    exited=status.get("completed", 0) + status.get("expired", 0),
                    steps=funnel,
                    sends_series=_series(counts.journey_hours.get(name, {}), hours),
                    entries_series=_series(entries.get(name, {}), hours),
                )
            )
        return tuple(out)

    # ---------------------------------------------------------------- handoffs

    def handoffs(self, limit: int = 200) -> tuple[tuple[HandoffRow, ...], int, dict[str, int]]:
        """The latest handoffs (newest first), the total, and the count per channel pair."""
        counts = self.counts()
        feed = list(counts.handoffs)[-limit:]
        feed.reverse()
        return tuple(feed), counts.handoff_total, dict(counts.handoff_pairs.most_common())

    # ---------------------------------------------------------------- caps

    def caps(self, top: int = 10) -> CapsOverview:
        """Customers at each cap now, deferrals/suppressions by reason, the most fatigued."""
        cut, counts = self.cut, self.counts()
        policy = cut.policy()
        now = self.clock()
        rules: tuple[CapRule, ...] = () if policy is None else policy.caps
        states: list[CapState] = []
        fatigued: list[FatiguedCustomer] = []
        if now is not None:
            until = format_timestamp(now)
            for cap in rules:
                counted, full = cut.cap_counts(
                    cap.scope, format_timestamp(now - cap.window), until, cap.limit
                )
                states.append(CapState(cap, full, counted))
            widest = max((c for c in rules if c.scope == "all"), key=lambda c: c.window,
                         default=None)  # fmt: skip
            if widest is not None:
                since = format_timestamp(now - widest.window)
                for customer, sends in cut.most_capped(since, until, top):
                    fatigued.append(
                        FatiguedCustomer(
                            customer, sends, widest,
                            deferred=counts.by_customer[(customer, "deferred")],
                            suppressed=counts.by_customer[(customer, "suppressed")],
                        )
                    )  # fmt: skip
        else:
            states = [CapState(cap, 0, 0) for cap in rules]
        hours = self._hours(counts)
        reasons = sorted({reason for reason, _ in counts.by_reason})
        rows = sorted(
            (
                ReasonCount(
                    reason,
                    counts.by_reason[(reason, "deferred")],
                    counts.by_reason[(reason, "suppressed")],
                    _series(counts.reason_hours.get(reason, {}), hours),
                )
                for reason in reasons
            ),
            key=lambda rc: (-(rc.deferred + rc.suppressed), rc.reason),
        )
        clock = None if now is None else format_timestamp(now)
        return CapsOverview(clock, tuple(states), tuple(rows), tuple(fatigued), policy)

    # ---------------------------------------------------------------- channels

    def channels(self) -> tuple[ChannelStats, ...]:
        """Per channel: sent / deferred / suppressed / failed, and adapter health."""
        cut, counts = self.cut, self.counts()
        health = cut.adapter_health()
        configured = cut.meta_json("channels")
        configured = configured if isinstance(configured, Mapping) else {}
        names: list[str | None] = list(CHANNELS)
        for ch, _ in counts.by_channel:
            if ch not in names:
                names.append(ch)
        out: list[ChannelStats] = []
        for ch in names:
            sent, deferred, suppressed, failed = (counts.by_channel[(ch, o)] for o in OUTCOMES)
            if ch is None:
                if sent or deferred or suppressed or failed:
                    out.append(ChannelStats(None, sent, deferred, suppressed, failed,
                                            None, "", None, None))  # fmt: skip
                continue
            conf = configured.get(ch)
            conf = conf if isinstance(conf, Mapping) else {}
            mode, is_conf = conf.get("mode"), conf.get("configured")
            state: str | None
            if ch in health:
                state, detail = health[ch]
            elif conf:
                state = (
                    "not_configured"
                    if is_conf is False
                    else ("dry_run" if mode == "dry-run" else "up")
                )
                detail = str(conf.get("detail", ""))
            else:
                state, detail = None, ""
            out.append(
                ChannelStats(
                    ch, sent, deferred, suppressed, failed, state, detail,
                    configured=is_conf if isinstance(is_conf, bool) else None,
                    mode=mode if isinstance(mode, str) else None,
                )
            )  # fmt: skip
        return tuple(out)

    # ---------------------------------------------------------------- customers

    def find_customers(self, query: str, limit: int = 20) -> tuple[CustomerMatch, ...]:
        """Profiles whose id, email or phone is `query`; else ids starting with it."""
        query = query.strip()
        if not query:
            return ()
        found = self.cut.find_exact(query, limit) or self.cut.find_id_prefix(query, limit)
        return tuple(found)

    def customer(
        self, customer: str, events: int = 60, decisions: int = 60
    ) -> CustomerRecord | None:
        """Everything about one customer, or None when there is no such profile."""
        cut = self.cut
        row = cut.profile_row(customer)
        if row is None:
            return None
        name, email, phone, updated_at, state = row
        state = state if isinstance(state, dict) else {}
        try:
            profile: Profile | None = Profile.from_json(state)
        except (KeyError, TypeError, ValueError, AttributeError):
            profile = None
        now = self.clock()
        policy: Policy | None = cut.policy()
        usage: list[CustomerCapUsage] = []
        for cap in () if policy is None else policy.caps:
            used = 0
            if now is not None:
                used = cut.customer_capped(name, cap.scope, format_timestamp(now - cap.window),
                                           format_timestamp(now))  # fmt: skip
            usage.append(CustomerCapUsage(cap, used))
        event_rows, events_total = cut.customer_events(name, events)
        decision_rows, decisions_total = cut.customer_decisions(name, decisions)
        meta = cut.meta(("config_dir",))
        return CustomerRecord(
            customer=name,
            email=email,
            phone=phone,
            updated_at=updated_at,
            profile=profile,
            state=state,
            events=tuple(event_rows),
            events_total=events_total,
            decisions=tuple(decision_rows),
            decisions_total=decisions_total,
            instances=tuple(cut.customer_instances(name)),
            caps=tuple(usage),
            clock=None if now is None else format_timestamp(now),
            journeys={d.name: d for d in cut.journey_defs()},
            config_dir=meta.get("config_dir"),
        )


class ConsoleReader:
    """The console's read-only view of one store. Use from one thread at a time."""

    def __init__(self, path: Path | str) -> None:
        """Remember the path; nothing is opened until the first read."""
        self.path = Path(path)
        self.connection = ConsoleConnection(self.path)
        self.fold = LedgerFold()

    def close(self) -> None:
        """Close the connection (it is reopened on the next read)."""
        self.connection.close()

    @contextmanager
    def read(self) -> Iterator[ConsoleCut]:
        """One committed cut; raises `sqlite3.Error` or `PartsError` when unreadable."""
        with self.connection.read() as cut:
            yield ConsoleCut(str(self.path), cut, self.fold, self.connection.generation)

    def status(self) -> StoreStatus:
        """Whether the store can be read, and its run facts (never raises)."""
        where = str(self.path)
        if not self.connection.exists():
            self.close()
            return StoreStatus(where, "missing")
        try:
            with self.read() as cut:
                return cut.status()
        except PartsError as exc:
            self.close()
            return StoreStatus(where, "creating", str(exc))
        except sqlite3.DatabaseError as exc:
            self.close()
            text = str(exc)
            if "file is not a database" in text:
                return StoreStatus(where, "error", text)
            return StoreStatus(where, "creating", text)
