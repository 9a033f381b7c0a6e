"""Engagement capture in live sends: signed click redirects and an open pixel.

With `[tracking]` in the policy and a public URL, `serve` rewrites each link of an
outgoing message (HTML `href`s, and URLs in the text) to `<public>/c/<token>`, and may
add an invisible image `<public>/o/<token>` to HTML email. The token carries, signed
with HMAC-SHA256, the message id, channel, customer, the link's index and the number of
links in the message, and the original URL — nothing is kept server-side, and a token
that was not minted here (or was altered) is refused, so the redirect is never open to
other targets. A customer whose trait `tracking_opt_out` is true gets their links as
written and no pixel.

The HTTP side (`omniconsole.adapters.http.tracking_routes`) turns a redirect into
`Message Clicked` and the pixel into `Message Opened` for that message and channel.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html as html_lib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from omniconsole.domain.channels import Channel

CLICK_PATH = "/c/"
OPEN_PATH = "/o/"
#: the trait a customer declines tracking with
OPT_OUT_TRAIT = "tracking_opt_out"

_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?://[^"']+)\2""", re.IGNORECASE)
_URL = re.compile(r"https?://[^\s<>\"']+")
_TRAILING = ".,;:!?)]}"  # sentence punctuation after a URL in text is not part of it
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Tracked:
    """What a valid token stands for: a click on link `index` of `count`, or an open."""

    kind: str  # "click" or "open"
    message_id: str
    channel: str
    customer: str
    index: int = 0
    count: int = 0
    url: str = ""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


#: characters of a token's signature (16 bytes, base64url without padding)
_MAC_CHARS = 22


def _mac(secret: str, body: str) -> str:
    return _b64(hmac.new(secret.encode(), b"track\n" + body.encode(), hashlib.sha256).digest()[:16])


def mint(secret: str, tracked: Tracked) -> str:
    """The token of `tracked`, signed with `secret`."""
    payload: dict[str, Any] = {
        "k": tracked.kind,
        "m": tracked.message_id,
        "c": tracked.channel,
        "u": tracked.customer,
    }
    if tracked.kind == "click":
        payload.update(i=tracked.index, n=tracked.count, l=tracked.url)
    body = _b64(orjson.dumps(payload))
    # no separator: a token is only [A-Za-z0-9_-], so no punctuation after a link in
    # text is ever read as part of it
    return body + _mac(secret, body)


def read(secret: str, token: str) -> Tracked | None:
    """What `token` stands for, or None when it was not minted with `secret`."""
    body, mac = token[:-_MAC_CHARS], token[-_MAC_CHARS:]
    if not body:
        return None
    try:
        if not hmac.compare_digest(_mac(secret, body), mac):
            return None
        raw = orjson.loads(_unb64(body))
    except (ValueError, TypeError, UnicodeError, binascii.Error, orjson.JSONDecodeError):
        return None
    if not isinstance(raw, dict):
        return None
    kind, mid, channel, customer = raw.get("k"), raw.get("m"), raw.get("c"), raw.get("u")
    if kind not in ("click", "open"):
        return None
    if not (isinstance(mid, str) and isinstance(channel, str) and isinstance(customer, str)):
        return None
    if not (mid and channel and customer):
        return None
    if kind == "open":
        return Tracked("open", mid, channel, customer)
    index, count, url = raw.get("i"), raw.get("n"), raw.get("l")
    if not isinstance(index, int) or not isinstance(count, int) or not isinstance(url, str):
        return None
    if not url.startswith(("https://", "http://")):
        return None
    return Tracked("click", mid, channel, customer, index, count, url)


def declined(traits: Mapping[str, Any]) -> bool:
    """Whether the customer declined tracking (`tracking_opt_out`: true, "true", "yes")."""
    value = traits.get(OPT_OUT_TRAIT)
    if isinstance(value, str):
        return value.strip().casefold() in ("true", "yes", "1")
    return value is True


@dataclass(frozen=True, slots=True)
class LinkTracker:
    """Rewrites a message's links and adds the pixel, per `[tracking]`."""

    public_url: str
    secret: str
    clicks: bool
    opens: bool
    channels: frozenset[Channel]

    def track(
        self,
        message_id: str,
        channel: Channel,
        customer: str,
        traits: Mapping[str, Any],
        text: str,
        html: str | None,
    ) -> tuple[str, str | None]:
        """`text` and `html` with tracked links (and the pixel); unchanged when the
        channel is not tracked or the customer declined."""
        if channel not in self.channels or declined(traits):
            return text, html
        if self.clicks:
            text, html = self._links(message_id, channel, customer, text, html)
        if self.opens and html is not None and channel is Channel.EMAIL:
            token = mint(self.secret, Tracked("open", message_id, str(channel), customer))
            pixel = (
                f'<img src="{self.public_url}{OPEN_PATH}{token}" width="1" height="1" '
                'alt="" style="display:none">'
            )
            ends = [m.start() for m in _BODY_END.finditer(html)]
            at = ends[-1] if ends else len(html)  # inside the body when it has one
            html = html[:at] + pixel + html[at:]
        return text, html

    def _links(
        self, message_id: str, channel: Channel, customer: str, text: str, html: str | None
    ) -> tuple[str, str | None]:
        urls: list[str] = []  # distinct links, in order of first appearance

        def ours(url: str) -> bool:  # our own pages (unsubscribe, preferences) stay as is
            return url.startswith(self.public_url + "/")

        for url in [html_lib.unescape(m.group(3)) for m in _HREF.finditer(html or "")] + [
            _strip(m.group(0)) for m in _URL.finditer(text)
        ]:
            if url not in urls and not ours(url):
                urls.append(url)
        if not urls:
            return text, html
        count = len(urls)

        def redirect(url: str) -> str:
            tracked = Tracked(
                "click", message_id, str(channel), customer, urls.index(url), count, url
            )
            return f"{self.public_url}{CLICK_PATH}{mint(self.secret, tracked)}"

        def in_html(m: re.Match[str]) -> str:
            url = html_lib.unescape(m.group(3))
            if ours(url):
                return m.group(0)
            return f"{m.group(1)}{m.group(2)}{redirect(url)}{m.group(2)}"

        def in_text(m: re.Match[str]) -> str:
            url = _strip(m.group(0))
            if ours(url):
                return m.group(0)
            return redirect(url) + m.group(0)[len(url) :]

        return _URL.sub(in_text, text), None if html is None else _HREF.sub(in_html, html)


def _strip(url: str) -> str:
    return url.rstrip(_TRAILING)
