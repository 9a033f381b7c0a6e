"""Channels and message categories (SPEC §3)."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    """A channel we can reach a customer on."""

    EMAIL = "email"
    SMS = "sms"
    WHATSAPP = "whatsapp"
    RCS = "rcs"
    PUSH = "push"
    IN_APP = "in_app"


class Category(StrEnum):
    """What kind of message this is; decides consent and cap rules."""

    TRANSACTIONAL = "transactional"
    LIFECYCLE = "lifecycle"
    PROMOTIONAL = "promotional"


ALL_CHANNELS: tuple[Channel, ...] = tuple(Channel)
CHANNEL_NAMES: frozenset[str] = frozenset(c.value for c in Channel)
CATEGORY_NAMES: frozenset[str] = frozenset(c.value for c in Category)
