"""Signed unsubscribe links (RFC 8058 one-click): only we can mint one for a customer."""

from __future__ import annotations

import hashlib
import hmac


def link_token(secret: str, customer: str, channel: str) -> str:
    """The token an unsubscribe link carries for `customer` on `channel`."""
    mac = hmac.new(secret.encode(), f"{customer}\n{channel}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


def token_ok(secret: str, customer: str, channel: str, token: str) -> bool:
    """Whether `token` was minted by `link_token` for this customer and channel."""
    return hmac.compare_digest(link_token(secret, customer, channel), token)
