"""Tracked links (`domain.tracking`): only tokens we minted are read back, links are
rewritten in HTML and text alike, our own pages and customers who declined are left
alone."""

from __future__ import annotations

import re

from omniconsole.domain.channels import Channel
from omniconsole.domain.tracking import LinkTracker, Tracked, mint, read

SECRET = "s3cret"
PUBLIC = "https://hooks.example.test"
TRACKER = LinkTracker(PUBLIC, SECRET, True, True, frozenset({Channel.EMAIL, Channel.SMS}))


def tokens(text: str, kind: str = "c") -> list[str]:
    return re.findall(rf"{re.escape(PUBLIC)}/{kind}/([A-Za-z0-9_\-]+)", text)


def test_a_minted_click_token_reads_back_what_it_signs() -> None:
    tracked = Tracked("click", "c-1:j:1:s", "email", "c-1", 1, 2, "https://shop.example.com/a?b=1")
    assert read(SECRET, mint(SECRET, tracked)) == tracked


def test_a_token_signed_with_another_secret_is_refused() -> None:
    token = mint("other", Tracked("open", "m", "email", "c-1"))
    assert read(SECRET, token) is None


def test_a_token_with_an_altered_link_is_refused() -> None:
    token = mint(SECRET, Tracked("click", "m", "email", "c-1", 0, 1, "https://good.example"))
    body, mac = token[:-22], token[-22:]
    forged = mint("x", Tracked("click", "m", "email", "c-1", 0, 1, "https://evil.example"))
    assert read(SECRET, forged[:-22] + mac) is None
    assert read(SECRET, body + mac[:-2] + ("AA" if mac[-2:] != "AA" else "BB")) is None
    assert read(SECRET, "not a token") is None and read(SECRET, "") is None


def test_html_links_and_text_links_become_signed_redirects() -> None:
    html = '<p><a href="https://shop.example.com/deals?x=1&amp;y=2">Deals</a> <a href="mailto:a@b">m</a></p>'
    text = "See https://shop.example.com/deals?x=1&y=2. Or https://shop.example.com/help!"
    new_text, new_html = TRACKER.track("m-1", Channel.EMAIL, "c-1", {}, text, html)
    assert new_html is not None
    links = [read(SECRET, t) for t in tokens(new_html)]
    assert [(t.url, t.index, t.count) for t in links if t] == [
        ("https://shop.example.com/deals?x=1&y=2", 0, 2)
    ]
    assert 'href="mailto:a@b"' in new_html
    text_links = [read(SECRET, t) for t in tokens(new_text)]
    assert [(t.url, t.index) for t in text_links if t] == [
        ("https://shop.example.com/deals?x=1&y=2", 0),
        ("https://shop.example.com/help", 1),
    ]
    assert new_text.endswith("!") and ". Or " in new_text


def test_email_html_gets_an_open_pixel_inside_its_body() -> None:
    _, html = TRACKER.track(
        "m-1", Channel.EMAIL, "c-1", {}, "hi", "<html><body><p>hi</p></body></html>"
    )
    assert html is not None and html.endswith("</body></html>")
    (token,) = tokens(html, "o")
    assert read(SECRET, token) == Tracked("open", "m-1", "email", "c-1")


def test_a_customer_who_declined_tracking_gets_links_as_written() -> None:
    text, html = "https://a.example", '<a href="https://a.example">a</a>'
    assert TRACKER.track("m", Channel.EMAIL, "c-1", {"tracking_opt_out": True}, text, html) == (
        text,
        html,
    )
    assert TRACKER.track("m", Channel.EMAIL, "c-1", {"tracking_opt_out": "yes"}, text, html) == (
        text,
        html,
    )


def test_untracked_channels_and_our_own_pages_are_left_alone() -> None:
    text = "https://a.example"
    assert TRACKER.track("m", Channel.PUSH, "c-1", {}, text, None) == (text, None)
    own = f"Manage: {PUBLIC}/preferences?customer=c-1&token=t"
    assert TRACKER.track("m", Channel.SMS, "c-1", {}, own, None) == (own, None)
