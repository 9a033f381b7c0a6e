"""The customer pane's "Why" section: `omniconsole explain CUSTOMER`, as the CLI words it.

The chain is the engine's own re-run of the customer (`omniconsole.engine.explain`),
taken on the poll worker with the customer's snapshot; here it is only styled. Blocks
(an instance and its steps, one message's decisions) are kept whole when filtering.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.text import Text

from omniconsole.engine.explain_text import explain_text
from omniconsole.tui.format import style_for

__all__ = ["why_text"]

_OUTCOMES = ("sent", "deferred", "suppressed", "held_out", "failed")


def _styled(line: str, variables: Mapping[str, str]) -> Text:
    stripped = line.lstrip()
    if stripped.startswith(("Message ", "Customer ")) and not line.startswith(" "):
        return Text(line, style="bold")
    if stripped.startswith("⇒") or stripped.startswith("Final outcome:"):
        outcome = next((o for o in _OUTCOMES if f" {o}" in stripped), None)
        key = "sent" if outcome in ("sent", None) else "deferred" if outcome == "deferred" else (
            "dry_run" if outcome == "held_out" else "suppressed")  # fmt: skip
        return Text(line, style=style_for(variables, key))
    if stripped.startswith("Not explained"):
        return Text(line, style=style_for(variables, "failed"))
    if (
        stripped.startswith(("Verified", "Never created", "never created"))
        or " never created" in line
    ):
        return Text(line, style="dim")
    return Text(line)


def why_text(
    explanation: Mapping[str, Any] | None, variables: Mapping[str, str], needle: str = ""
) -> Text:
    """The chain in words, styled; only the blocks that contain every word of `needle`."""
    if explanation is None:
        return Text(
            "Could not re-run this customer from the store (see `omniconsole explain`).",
            style="dim",
        )
    blocks = explain_text(dict(explanation)).rstrip("\n").split("\n\n")
    words = needle.casefold().split()
    shown = [b for b in blocks if all(w in b.casefold() for w in words)]
    out = Text()
    for n, block in enumerate(shown):
        if n:
            out.append("\n\n")
        for m, line in enumerate(block.split("\n")):
            if m:
                out.append("\n")
            out.append_text(_styled(line, variables))
    return out
