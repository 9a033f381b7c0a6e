"""Real local peers shared by the tests (helpers; the fixtures are in conftest.py).

A module of its own name: `conftest` is ambiguous when several folders have one.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

REPO_ROOT = Path(__file__).resolve().parents[1]
PRISM = REPO_ROOT / ".peers" / "node_modules" / ".bin" / "prism"
PRISM_START_TIMEOUT = 45.0


def twilio_spec() -> Path:
    """Twilio's OpenAPI file: $OMNICONSOLE_TWILIO_SPEC, else shared/ beside the repo."""
    override = os.environ.get("OMNICONSOLE_TWILIO_SPEC")
    if override:
        return Path(override)
    return REPO_ROOT.parent / "shared" / "peers" / "twilio" / "twilio_api_v2010.json"


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- SMTP ------------------------------------------------------------------------------


@dataclass
class SmtpRecorder:
    """aiosmtpd handler keeping every envelope; can refuse recipients with a reply."""

    envelopes: list[Envelope] = field(default_factory=list)
    refuse: dict[str, list[str]] = field(default_factory=dict)  # address -> queued replies

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        replies = self.refuse.get(address)
        if replies:
            return replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


class LoopbackController(Controller):  # type: ignore[misc]
    """aiosmtpd's threaded Controller, learning its port when asked to bind port 0."""

    def _trigger_server(self) -> None:
        if self.port == 0 and self.server is not None:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@dataclass
class PrismPeer:
    """A running Prism mock of Twilio's 2010-04-01 API."""

    url: str
    log: list[str]
