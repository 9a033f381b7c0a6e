"""The agent's confirmation before an opt-out or opt-in is recorded through the service."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from omniconsole.adapters.store.console_rows import CHANNELS

__all__ = ["ConsentDialog", "ConsentRequest"]


@dataclass(frozen=True, slots=True)
class ConsentRequest:
    """What the agent is about to record: for whom, which channel, in or out, as whom."""

    customer: str
    channel: str
    opt_in: bool
    agent: str
    service: str


class ConsentDialog(ModalScreen[ConsentRequest | None]):
    """Pick the channel (unless given) and confirm; Esc cancels. Returns the request."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, request: ConsentRequest) -> None:
        """Ask about `request`."""
        super().__init__()
        self.request = request

    def compose(self) -> ComposeResult:
        """The question and the choices."""
        r = self.request
        verb = "opt back in to" if r.opt_in else "opt out of"
        with Vertical(id="consent-box"):
            yield Static(
                f"Record that {r.customer} asked to {verb}"
                + (f" {r.channel}?" if r.channel else ":"),
                classes="caption",
            )
            yield Static(f"As agent {r.agent}, through {r.service}.", classes="hint")
            choices = [r.channel] if r.channel else list(CHANNELS)
            yield OptionList(
                *(Option(f"{'Yes, ' if r.channel else ''}{c}", id=c) for c in choices),
                Option("Cancel", id="cancel"),
                id="consent-choices",
            )

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        choice = event.option.id
        if choice is None or choice == "cancel":
            self.dismiss(None)
        else:
            self.dismiss(replace(self.request, channel=choice))

    def action_cancel(self) -> None:
        """Esc: record nothing."""
        self.dismiss(None)
