"""What a profile keeps for channel intelligence: sends and engagements over the
engagement window, the customer's topic choices and the digests being collected.

It lives on `Profile.channel_state`, None until a config that uses it has something to
record — so a profile under the shipped config stores and costs nothing more. Times are
whole seconds since the epoch: compact in the stored profile and cheap to compare.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: most sends (and most engagements) remembered, however long the window: a bound on a
#: profile's size whatever a customer does; the newest are kept
HISTORY_KEPT = 200


@dataclass(slots=True)
class Digest:
    """Triggers of one step collapsing into one message (`message_id`: the first's).

    Open (others join it) until `closes`; its final decision then lists every item.
    """

    message_id: str
    journey: str
    step: str
    closes: datetime
    window: str  # as configured, e.g. "6h"
    items: list[dict[str, Any]] = field(default_factory=list)
    joined: list[str] = field(default_factory=list)  # message ids of the later triggers

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Digest:
        """From the JSON a stored profile holds (orjson writes the dataclass)."""
        return cls(
            raw["message_id"],
            raw["journey"],
            raw["step"],
            datetime.fromisoformat(raw["closes"]),
            raw["window"],
            list(raw["items"]),
            list(raw["joined"]),
        )


@dataclass(slots=True)
class ChannelState:
    """One customer's channel-intelligence state (see the module docstring)."""

    #: (second, channel) of each message sent, oldest first
    sends: list[tuple[int, str]] = field(default_factory=list)
    #: (second, channel, message id or "") of each open, click or reply, oldest first
    engaged: list[tuple[int, str, str]] = field(default_factory=list)
    #: topic -> channel (or "all") -> on; only what the customer chose
    topics: dict[str, dict[str, bool]] = field(default_factory=dict)
    digests: list[Digest] = field(default_factory=list)

    def record_send(self, second: int, channel: str, since: int) -> None:
        """A message went out on `channel`; forget sends at or before `since`."""
        self.sends.append((second, channel))
        _prune(self.sends, since)

    def record_engagement(self, second: int, channel: str, message_id: str, since: int) -> None:
        """An open, click or reply on `channel`; forget engagements at or before `since`."""
        self.engaged.append((second, channel, message_id))
        _prune(self.engaged, since)

    def choose(self, topic: str, channel: str, on: bool) -> None:
        """The customer turned `topic` on or off on `channel` ("all": every channel)."""
        choices = self.topics.setdefault(topic, {})
        if channel == "all":
            choices.clear()  # a choice for every channel replaces the per-channel ones
        choices[channel] = on

    def digest(self, message_id: str) -> Digest | None:
        """The digest whose message is `message_id`, if it is still being decided."""
        for digest in self.digests:
            if digest.message_id == message_id:
                return digest
        return None

    def open_digest(self, journey: str, step: str, now: datetime) -> Digest | None:
        """The digest of `journey`/`step` still taking triggers at `now`, if any."""
        for digest in self.digests:
            if digest.journey == journey and digest.step == step and now < digest.closes:
                return digest
        return None

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> ChannelState | None:
        """From the JSON a stored profile holds (orjson writes the dataclass); None stays None."""
        if raw is None:
            return None
        return cls(
            [(int(s), str(c)) for s, c in raw.get("sends", ())],
            [(int(s), str(c), str(m)) for s, c, m in raw.get("engaged", ())],
            {t: dict(v) for t, v in raw.get("topics", {}).items()},
            [Digest.from_json(d) for d in raw.get("digests", ())],
        )


def _prune(entries: list[Any], since: int) -> None:
    drop = 0
    while drop < len(entries) and entries[drop][0] <= since:
        drop += 1
    drop = max(drop, len(entries) - HISTORY_KEPT)
    if drop > 0:
        del entries[:drop]
