"""Signed unsubscribe links (RFC 8058 one-click): only we can mint one for a customer.

A link's token signs the customer, the channel and the message id: one link stands for
one message's unsubscribe, so it cannot be replayed with other message ids into any
number of `Unsubscribed` events, and using it again is the same event — a duplicate.
Links minted before message ids were signed (over customer and channel only) still
work, as one link per customer and channel.
"""

from __future__ import annotations

import hashlib
import hmac


def _mac(secret: str, text: str) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()[:32]


def link_token(secret: str, customer: str, channel: str, message_id: str = "") -> str:
    """The token an unsubscribe link carries for one message to `customer` on `channel`."""
    if not message_id:
        return _mac(secret, f"{customer}\n{channel}")
    return _mac(secret, f"{customer}\n{channel}\n{message_id}")


def link_message_id(
    secret: str, customer: str, channel: str, message_id: str, token: str
) -> str | None:
    """The message id a link's `token` was minted for: `message_id` when it signs it,
    "" for a link that signs only customer and channel, None for a forged link."""
    try:
        if message_id and hmac.compare_digest(
            link_token(secret, customer, channel, message_id), token
        ):
            return message_id
        if hmac.compare_digest(link_token(secret, customer, channel), token):
            return ""
    except (UnicodeError, TypeError):  # a query value that is no text: not ours
        return None
    return None
