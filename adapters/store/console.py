"""The console's data layer: each view's records from one committed cut of the store.

`ConsoleReader.read()` opens one read transaction and yields a `ConsoleCut`; the
status line and the visible view are both taken from it, so the clock the header
shows and every list agree. SQL lives in `console_queries`, the engine's counts are
read by `console_aggregates`, agents' search words are read by `console_search`, and
the words on screen are the console's own (`omniconsole.tui.present`).

Used by one thread at a time (the console's poll worker). Nothing here imports textual.

(Just over 400 lines: the console's one entry point, `ConsoleReader`, and the cut it
hands each view; the queries themselves live in `console_queries` and beside it.)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from omniconsole.adapters.store.console_aggregates import (
    DecisionCounts,
    HourlyCounts,
    InstanceCounts,
)
from omniconsole.adapters.store.console_connection import ConsoleConnection
from omniconsole.adapters.store.console_customers import CustomerQueries
from omniconsole.adapters.store.console_outcomes import outcomes_overview
from omniconsole.adapters.store.console_queries import REQUIRED_TABLES, StoreCut
from omniconsole.adapters.store.console_rows import (
    CHANNELS,
    OUTCOMES,
    CapsOverview,
    CapState,
    ChannelStats,
    CustomerMatch,
    CustomerRecord,
    DecisionFilter,
    DecisionPage,
    FatiguedCustomer,
    FunnelStep,
    JourneyStats,
    OutcomesOverview,
    ReasonCount,
    StoreStatus,
)
from omniconsole.adapters.store.parts import PartsError
from omniconsole.adapters.store.progress import Progress
from omniconsole.adapters.store.schema import SCHEMA_VERSION
from omniconsole.domain.config import CapRule, JourneyDef
from omniconsole.domain.timeutil import format_timestamp, parse_timestamp

__all__ = ["SERIES_HOURS", "ConsoleCut", "ConsoleReader"]

#: Sparkline buckets per series (simulated hours).
SERIES_HOURS = 48
#: the `meta` facts the status line shows
_STATUS_KEYS = ("mode", "status", "source", "clock", "checkpoint_line", "schema_version",
                "view_clock", "until")  # fmt: skip


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
    _counts: DecisionCounts | None = None
    _meta: dict[str, str] | None = None

    def meta(self) -> dict[str, str]:
        """The run facts the views use (read once per cut)."""
        if self._meta is None:
            self._meta = self.cut.meta(_STATUS_KEYS)
        return self._meta

    def counts(self) -> DecisionCounts:
        """The engine's decision counts (read once per cut)."""
        if self._counts is None:
            self._counts = DecisionCounts.read(self.cut)
        return self._counts

    # ---------------------------------------------------------------- status

    def status(self) -> StoreStatus:
        """The run facts of this cut."""
        cut = self.cut
        if not cut.tables() >= REQUIRED_TABLES:
            return StoreStatus(self.path, "creating")
        meta = self.meta()
        version = meta.get("schema_version", "")
        if version.isdigit() and int(version) < SCHEMA_VERSION:
            return StoreStatus(
                self.path, "error",
                f"written by an older omniconsole (store schema {version}, this console reads"
                f" {SCHEMA_VERSION}): replay the log again to see it here",
            )  # fmt: skip
        line = meta.get("checkpoint_line", "")
        return StoreStatus(
            self.path,
            "ready",
            mode=meta.get("mode"),
            status=meta.get("status"),
            source=meta.get("source"),
            clock=self.view_clock(),
            checkpoint_line=int(line) if line.isdigit() else None,
            decisions=cut.decision_total(),
            customers=cut.customer_total(),
        )

    def view_clock(self) -> str | None:
        """The time up to which this cut is complete: every decision it holds is at or
        before it (`view_clock`, written with each checkpoint), else the engine's clock."""
        meta = self.meta()
        return meta.get("view_clock") or meta.get("clock") or None

    def clock(self) -> datetime | None:
        """`view_clock` as a time."""
        return _time(self.view_clock())

    def _hours(self) -> list[str]:
        return series_hours(self.clock())

    # ---------------------------------------------------------------- journeys

    def journeys(self) -> tuple[JourneyStats, ...]:
        """Every journey: entered / active (per step) / converted / exited, sends per hour.

        The funnel counts customers: a step's own message per journey instance by its
        final outcome; fallback re-sends and repeated deferrals are counted apart."""
        cut, counts = self.cut, self.counts()
        definitions = cut.journey_defs()
        instances = InstanceCounts.read(cut).by_journey
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
        hours = self._hours()
        hourly = HourlyCounts.read(cut, hours[0]) if hours else HourlyCounts()
        entries = cut.entries_per_hour(hours[0]) if hours else {}
        out: list[JourneyStats] = []
        first, again = counts.first_by_step, counts.fallback_by_step
        for name, definition, steps in order:
            status: Mapping[str, int] = instances.get(name, {})
            for extra in [*seen_steps.get(name, []), *waiting.get(name, {})]:
                if extra not in steps:
                    steps.append(extra)
            funnel = tuple(
                FunnelStep(
                    step=s,
                    waiting=waiting.get(name, {}).get(s, 0),
                    sent=first[(name, s, "sent")],
                    deferred=counts.by_step[(name, s, "deferred")],
                    suppressed=first[(name, s, "suppressed")],
                    failed=first[(name, s, "failed")],
                    fallback_sent=again[(name, s, "sent")],
                )
                for s in steps
            )
            entered = status.get("entered", 0)
            ended = sum(status.get(k, 0) for k in ("converted", "completed", "expired"))
            out.append(
                JourneyStats(
                    name=name,
                    definition=definition,
                    entered=entered,
                    active=entered - ended,
                    converted=status.get("converted", 0),
                    exited=status.get("completed", 0) + status.get("expired", 0),
                    steps=funnel,
                    messages_sent=counts.by_journey[(name, "sent")],
                    sends_series=_series(hourly.sent_by_journey.get(name, {}), hours),
                    entries_series=_series(entries.get(name, {}), hours),
                )
            )
        return tuple(out)

    # ---------------------------------------------------------------- decisions

    def decisions(
        self, where: DecisionFilter, after: tuple[int, str, int] | None = None, limit: int = 100
    ) -> DecisionPage:
        """A page of decisions matching `where`, newest first, after the key `after`."""
        rows = self.cut.decisions(where, after, limit + 1)
        return DecisionPage(where, tuple(rows[:limit]), self.total(where), after,
                            len(rows) > limit)  # fmt: skip

    def total(self, where: DecisionFilter) -> int | None:
        """How many decisions match `where`, from the engine's counts (None: they cannot
        say — a customer or a time range is part of the filter)."""
        return self.counts().matching(where)

    def vocabulary(self) -> dict[str, tuple[str, ...]]:
        """The values each decision filter can take in this store (from the counts)."""
        counts = self.counts()
        journeys = sorted(
            {j for j, _, _ in counts.by_step} | {d.name for d in self.cut.journey_defs()}
        )
        return {
            "outcome": OUTCOMES,
            "channel": CHANNELS,
            "reason": tuple(sorted({r for r, _ in counts.by_reason})),
            "journey": tuple(journeys),
            "step": tuple(sorted({s for _, s, _ in counts.by_step})),
        }

    def handoff_pairs(self) -> dict[str, int]:
        """`from→to` -> sent handoffs, most first."""
        return dict(self.counts().handoff_pairs.most_common())

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
                    outcomes = CustomerQueries(cut).customer_outcomes(customer)
                    fatigued.append(
                        FatiguedCustomer(customer, sends, widest, outcomes.get("deferred", 0),
                                         outcomes.get("suppressed", 0))
                    )  # fmt: skip
        else:
            states = [CapState(cap, 0, 0) for cap in rules]
        hours = self._hours()
        hourly = HourlyCounts.read(cut, hours[0]) if hours else HourlyCounts()
        reasons = sorted({reason for reason, _ in counts.by_reason})
        rows = sorted(
            (
                ReasonCount(
                    reason,
                    counts.by_reason[(reason, "deferred")],
                    counts.by_reason[(reason, "suppressed")],
                    _series(hourly.by_reason.get(reason, {}), hours),
                )
                for reason in reasons
                if counts.by_reason[(reason, "deferred")] + counts.by_reason[(reason, "suppressed")]
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

    # ---------------------------------------------------------------- outcomes

    def outcomes(self) -> OutcomesOverview:
        """Treatment against control per measured journey and variant, with the lift."""
        return outcomes_overview(self.cut)

    # ---------------------------------------------------------------- customers

    def find_customers(self, query: str, limit: int = 20) -> tuple[CustomerMatch, ...]:
        """Customers an agent may mean by `query` (see `CustomerQueries.find`)."""
        return CustomerQueries(self.cut).find(query, limit)

    def customer(
        self, customer: str, events: int = 60, decisions: int = 60
    ) -> CustomerRecord | None:
        """Everything about one customer, or None when there is no such profile."""
        cut = self.cut
        return CustomerQueries(cut).record(
            customer, self.clock(), cut.policy(), cut.journey_defs(),
            cut.meta(("config_dir",)).get("config_dir"), events, decisions,
        )  # fmt: skip


class ConsoleReader:
    """The console's read-only view of one store. Use from one thread at a time."""

    def __init__(self, path: Path | str) -> None:
        """Remember the path (or `postgresql://` URL); nothing is opened until the first
        read."""
        self.connection = ConsoleConnection(path if isinstance(path, str) else Path(path))
        #: the store as given (`explain` opens it again through `store_at`)
        self.location: Path | str = path
        self.path = self.connection.path
        #: how the store is named on screen (a URL's password masked)
        self.where = self.connection.where

    def close(self) -> None:
        """Close the connection (it is reopened on the next read)."""
        self.connection.close()

    @contextmanager
    def read(self) -> Iterator[ConsoleCut]:
        """One committed cut; raises `sqlite3.Error` or `PartsError` when unreadable."""
        with self.connection.read() as cut:
            yield ConsoleCut(self.where, cut)

    def changed(self) -> bool:
        """Whether anything was committed since the last `read` (cheap; True when unsure)."""
        return self.connection.changed()

    def progress(self) -> Progress | None:
        """How far a running replay has read, beside the committed cut (None: none)."""
        return self.connection.progress()

    def status(self) -> StoreStatus:
        """Whether the store can be read, and its run facts (never raises)."""
        where = self.where
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
