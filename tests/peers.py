"""Real local peers shared by the tests (helpers; the fixtures are in conftest.py).

A module of its own name: `conftest` is ambiguous when several folders have one.
Run as a script (`make test` does, before pytest) it checks that the npm-installed
peers are in place and exits 1 with one line per problem.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

REPO_ROOT = Path(__file__).resolve().parents[1]
PRISM = REPO_ROOT / ".peers" / "node_modules" / ".bin" / "prism"
PRISM_START_TIMEOUT = 45.0
# Where `make peers` puts the spec it takes from Twilio's npm package @twilio/cli-core.
FETCHED_TWILIO_SPEC = REPO_ROOT / ".peers" / "twilio" / "twilio_api_v2010.json"
TWILIO_MESSAGES_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages.json"


def twilio_spec() -> Path:
    """Twilio's OpenAPI file: $OMNICONSOLE_TWILIO_SPEC, else the copy `make peers` fetched."""
    override = os.environ.get("OMNICONSOLE_TWILIO_SPEC")
    if override:
        return Path(override)
    return FETCHED_TWILIO_SPEC


def peer_problems() -> list[str]:
    """What keeps Prism from serving Twilio's spec, one sentence each (empty: all is well).

    Cheap (about a second: Prism prints its version), so a missing or broken peer is
    reported before the suite runs instead of by a fixture timing out minutes into it.
    """
    problems: list[str] = []
    hint = "run `rm -rf .peers && make peers` (needs npm)"
    if not os.access(PRISM, os.X_OK):
        problems.append(f"Prism is not installed at {PRISM}: {hint}")
    else:
        try:
            subprocess.run([str(PRISM), "--version"], capture_output=True, check=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as exc:
            problems.append(f"Prism at {PRISM} does not run ({exc}): {hint}")
    spec = twilio_spec()
    source = "check OMNICONSOLE_TWILIO_SPEC" if os.environ.get("OMNICONSOLE_TWILIO_SPEC") else hint
    try:
        paths = json.loads(spec.read_bytes()).get("paths", {})
    except FileNotFoundError:
        problems.append(f"Twilio's OpenAPI spec is not at {spec}: {source}")
    except (OSError, ValueError, AttributeError) as exc:
        problems.append(f"Twilio's OpenAPI spec at {spec} is unreadable ({exc}): {source}")
    else:
        if TWILIO_MESSAGES_PATH not in paths:
            problems.append(f"Twilio's OpenAPI spec at {spec} has no {TWILIO_MESSAGES_PATH}")
    return problems


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


if __name__ == "__main__":
    found = peer_problems()
    for problem in found:
        print(f"test peers: {problem}", file=sys.stderr)
    sys.exit(1 if found else 0)
