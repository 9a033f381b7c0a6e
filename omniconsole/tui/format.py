"""Small text helpers shared by the views (pure; no widgets)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["OUTCOME_VAR", "bar", "interval_bar", "pct", "short_time", "spark", "style_for"]

_BLOCKS = " ▁▂▃▄▅▆▇█"

#: Theme variable that colours each outcome / health state.
OUTCOME_VAR: Mapping[str, str] = {
    "sent": "success",
    "up": "success",
    "deferred": "warning",
    "degraded": "warning",
    "dry_run": "secondary",
    "digested": "secondary",  # joined another message's digest: neither sent nor held
    "suppressed": "error",
    "failed": "error",
    "circuit_open": "error",
    "not_configured": "foreground-darken-1",
    "unknown": "foreground-darken-1",
}


def style_for(variables: Mapping[str, str], key: str | None) -> str:
    """A Rich style for an outcome or health state under the current theme."""
    var = OUTCOME_VAR.get(key or "", "")
    colour = variables.get(var, "")
    return f"bold {colour}" if colour else ""


def short_time(at: str | None) -> str:
    """`2026-01-08T12:00:00Z` → `01-08 12:00`; empty for None."""
    if not at:
        return ""
    return f"{at[5:10]} {at[11:16]}" if len(at) >= 16 else at


def pct(value: float | None) -> str:
    """A rate as a percentage with one decimal; `—` when there is no rate at all."""
    return "—" if value is None else f"{value * 100:.1f}%"


def spark(values: Sequence[int], width: int | None = None) -> str:
    """A one-line sparkline of `values` (the last `width` of them)."""
    data = list(values[-width:] if width else values)
    top = max(data, default=0)
    if top <= 0:
        return "▁" * len(data) if data else ""
    return "".join(_BLOCKS[max(1, round(v / top * 8))] if v else "▁" for v in data)


def bar(value: int, total: int, width: int = 20) -> str:
    """A horizontal bar of `value` out of `total`."""
    if total <= 0 or width <= 0:
        return ""
    filled = min(width, round(value / total * width))
    return "█" * filled + "░" * (width - filled)


def interval_bar(low: float, high: float, point: float, bound: float, width: int = 25) -> str:
    """An interval on an axis from `-bound` to `+bound`: `━` from `low` to `high`, `●` at
    `point`, `│` at zero, `·` elsewhere (`◂`/`▸` when it runs off the axis)."""
    if width < 3 or bound <= 0:
        return ""

    def cell(value: float) -> int:
        return max(0, min(width - 1, round((value + bound) / (2 * bound) * (width - 1))))

    cells = ["·"] * width
    zero = cell(0.0)
    for i in range(cell(low), cell(high) + 1):
        cells[i] = "━"
    cells[zero] = "┿" if cells[zero] == "━" else "│"
    cells[cell(point)] = "●"
    if low < -bound:
        cells[0] = "◂"
    if high > bound:
        cells[-1] = "▸"
    return "".join(cells)
