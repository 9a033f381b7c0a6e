"""Channel affinity: how much a customer engages on each channel, from their own history.

A channel's score is its engagements per message sent over the engagement window,
smoothed toward the population's rate on that channel (additive smoothing: the
population counts as `prior_weight` messages' worth of evidence):

    score = (engagements + prior_weight * population_rate) / (sends + prior_weight)

so a customer with no history scores the population's rates, and each message sent
and each open, click or reply moves the score toward their own rate. An open and a
click of one message count once when they name its message id.

The population's rates are configured (`[engagement] population`), never measured
while running: a rate computed over the customers seen so far would make one
customer's channel depend on others' events, on the order they arrive in and on how a
replay is partitioned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from omniconsole.domain.channel_config import EngagementSettings
from omniconsole.domain.channel_state import ChannelState
from omniconsole.domain.channels import Channel


@dataclass(frozen=True, slots=True)
class Score:
    """A channel's affinity score and the counts it came from."""

    channel: Channel
    value: float
    engaged: int
    sent: int

    def text(self) -> str:
        """`email 0.42 (3/5)`: the score, engagements of messages sent."""
        return f"{self.channel} {self.value:.2f} ({self.engaged}/{self.sent})"


def scores(
    state: ChannelState | None,
    channels: Sequence[Channel],
    now_second: int,
    settings: EngagementSettings,
) -> tuple[Score, ...]:
    """The score of each of `channels` at `now_second`, in the order given."""
    since = now_second - int(settings.window.total_seconds())
    sent: dict[str, int] = {}
    engaged: dict[str, int] = {}
    if state is not None:
        for second, channel in state.sends:
            if second > since:
                sent[channel] = sent.get(channel, 0) + 1
        counted: set[tuple[str, str]] = set()
        for second, channel, message_id in state.engaged:
            if second <= since:
                continue
            if message_id:
                if (channel, message_id) in counted:
                    continue
                counted.add((channel, message_id))
            engaged[channel] = engaged.get(channel, 0) + 1
    weight = settings.prior_weight
    out: list[Score] = []
    for channel in channels:
        e, n = engaged.get(channel, 0), sent.get(channel, 0)
        value = (e + weight * settings.rate(channel)) / (n + weight)
        out.append(Score(channel, value, e, n))
    return tuple(out)


def ranked(order: Sequence[Channel], found: Sequence[Score]) -> tuple[Channel, ...]:
    """`order` sorted by score, highest first; equal scores keep their place in `order`."""
    value = {s.channel: s.value for s in found}
    position = {c: i for i, c in enumerate(order)}
    return tuple(sorted(order, key=lambda c: (-value.get(c, 0.0), position[c])))
