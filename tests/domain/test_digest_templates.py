"""Templates of a digest step list its items (`item` and the `[*.digest]` tables)."""

from __future__ import annotations

from pathlib import Path

import pytest

from omniconsole.domain.messages import Recipient
from omniconsole.domain.templates import TemplateError, load_templates

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "examples" / "channels" / "templates"
ANA = Recipient("c-1", email="ana@example.com", first_name="Ana")


def test_a_digest_lists_each_trigger_with_the_item_template() -> None:
    items = [{"sku": "SKU-1", "new_price": 9.5}, {"sku": "SKU-2", "new_price": 12}]
    rendered = load_templates(EXAMPLE).render("price_drop", "alert", "whatsapp", ANA, None,
                                              {"items": items})  # fmt: skip
    assert rendered.text == (
        "Good news, Ana: 2 price drops: SKU-1 now 9.5; SKU-2 now 12. Reply STOP to opt out."
    )


def test_html_lists_items_escaped() -> None:
    items = [{"sku": "<b>SKU-1</b>"}, {"sku": "SKU-2", "new_price": "$5"}]
    rendered = load_templates(EXAMPLE).render("price_drop", "alert", "email", ANA, None,
                                              {"items": items})  # fmt: skip
    assert rendered.html is not None
    assert "<ul><li>&lt;b&gt;SKU-1&lt;/b&gt; now a lower price</li><li>SKU-2 now $5</li></ul>" in (
        rendered.html
    )
    assert rendered.subject == "2 price drops for you"


def test_a_digest_of_one_item_reads_like_a_single_message() -> None:
    rendered = load_templates(EXAMPLE).render("price_drop", "alert", "push", ANA, None,
                                              {"items": [{"sku": "SKU-1"}], "sku": "SKU-1"})  # fmt: skip
    assert rendered.subject == "Price drop"


def test_a_digest_table_without_an_item_template_is_refused(tmp_path: Path) -> None:
    (tmp_path / "j.toml").write_text(
        '[s.default]\nsubject = "x"\ntext = "x"\n[s.default.digest]\ntext = "${items}"\n'
    )
    with pytest.raises(
        TemplateError, match=r"\[s.default.digest\] lists items, but \[s\] has no item"
    ):
        load_templates(tmp_path)


def test_items_outside_a_digest_table_are_refused(tmp_path: Path) -> None:
    (tmp_path / "j.toml").write_text(
        '[s]\nitem = "x"\n[s.default]\nsubject = "x"\ntext = "${items}"\n'
    )
    with pytest.raises(TemplateError, match=r"unknown variable \$\{items\}"):
        load_templates(tmp_path)
