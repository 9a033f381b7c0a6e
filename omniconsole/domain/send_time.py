"""Send time: a customer's most engaged local hour, for `send_at = "best_hour"` steps.

The hour is the one (0-23, the customer's own time zone) in which most of their opens,
clicks and replies of the engagement window happened; equal counts go to the earlier
hour. With fewer than `min_engagements` engagements the configured population hour is
used — configured, not measured, for the reason `omniconsole.domain.affinity` gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from omniconsole.domain.channel_config import EngagementSettings
from omniconsole.domain.channel_state import ChannelState
from omniconsole.domain.profile import zone


@dataclass(frozen=True, slots=True)
class BestHour:
    """The chosen local hour and why: the customer's own (`count` of `total`
    engagements in it) or the population's."""

    hour: int
    own: bool
    count: int
    total: int

    def why(self) -> str:
        """In words, for the explanation."""
        if self.own:
            return f"their most engaged hour ({self.count} of {self.total} recent engagements)"
        if not self.total:
            return "the population's hour (no recent engagements of their own)"
        return f"the population's hour (only {self.total} recent engagements of their own)"

    def to_json(self) -> dict[str, object]:
        """The ledger's `send_at` key."""
        return {
            "hour": f"{self.hour:02d}:00",
            "basis": "customer" if self.own else "population",
            "engagements": self.total,
        }


def best_hour(
    state: ChannelState | None, timezone: str, now: datetime, settings: EngagementSettings
) -> BestHour:
    """The customer's best local hour at `now`."""
    since = int(now.timestamp()) - int(settings.window.total_seconds())
    counts = [0] * 24
    total = 0
    if state is not None:
        tz = zone(timezone)
        for second, _, _ in state.engaged:
            if second > since:
                counts[datetime.fromtimestamp(second, UTC).astimezone(tz).hour] += 1
                total += 1
    if total < settings.min_engagements:
        return BestHour(settings.population_hour, False, 0, total)
    top = max(counts)
    hour = counts.index(top)  # the earliest of equal hours
    return BestHour(hour, True, top, total)


def next_hour_start(now: datetime, timezone: str, hour: int) -> datetime:
    """`now` when the local clock is within `hour`, else the next time it reads hour:00."""
    tz = zone(timezone)
    local = now.astimezone(tz)
    if local.hour == hour:
        return now
    start = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if start <= local:
        start = (local + timedelta(days=1)).replace(hour=hour, minute=0, second=0, microsecond=0)
    # through UTC, so a local time a DST change skips still lands on a real instant
    return start.astimezone(UTC).astimezone(now.tzinfo)
