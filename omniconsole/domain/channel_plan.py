"""What a send request carries when its step has channel rules (`SendRequest.plan`).

The flow builds it from the customer's profile (history, topic choices, open digests);
the governor decides with it (`omniconsole.domain.selection`). A request without rules
carries None and is decided exactly as SPEC §4 says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from omniconsole.domain.affinity import Score
from omniconsole.domain.channels import Channel
from omniconsole.domain.send_time import BestHour

#: a trigger that joined a digest: its ledger line points at the digest's message
DIGESTED = "digested"


@dataclass(frozen=True, slots=True)
class DigestSummary:
    """The digest a send is the message of: its window and every trigger in it."""

    window: str
    items: int
    joined: tuple[str, ...]  # the later triggers' message ids

    def to_json(self) -> dict[str, object]:
        """The ledger's `digest` key."""
        return {"window": self.window, "items": self.items, "joined": list(self.joined)}


@dataclass(slots=True)
class ChannelPlan:
    """A step's channel rules, resolved for one customer at one moment.

    Treat it as immutable; not `frozen` for the reason `SendRequest` gives.
    """

    #: channels in the order to try them (preferred first, then by affinity), or None
    #: for the SPEC's order (preferred first, then the step's list)
    order: tuple[Channel, ...] | None = None
    scores: tuple[Score, ...] = ()
    #: what a full own-channel cap or quiet hours does: defer, suppress, switch; None:
    #: SPEC §4 (own cap: the next channel; quiet hours: deferred)
    on_block: str | None = None
    best_hour: BestHour | None = None
    max_delay: timedelta = timedelta(0)
    topic: str | None = None
    #: usable channels the customer has turned the topic off on
    topic_off: frozenset[Channel] = field(default_factory=frozenset)
    #: this first trigger opens a digest that closes after this long (label: as configured)
    digest_open: timedelta | None = None
    digest_label: str = ""
    #: this send is a digest's message
    digest: DigestSummary | None = None
    #: this trigger joined the digest whose message id this is
    joined: str | None = None
