"""Real local peers shared by the tests: aiosmtpd, Prism (Twilio's OpenAPI), an FCM peer.

Prism starts once per session (10-15 s); everything else is per test and cheap.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from fault_proxy import FaultProxy
from fcm_peer import FcmPeer

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


@pytest.fixture
def smtp_recorder() -> SmtpRecorder:
    """The handler of the SMTP peer (inspect `.envelopes`)."""
    return SmtpRecorder()


@pytest.fixture
def smtp_server(smtp_recorder: SmtpRecorder) -> Iterator[LoopbackController]:
    """A running aiosmtpd on 127.0.0.1 (read `.port`)."""
    controller = LoopbackController(smtp_recorder, hostname="127.0.0.1", port=0)
    controller.start()
    yield controller
    controller.stop()


# --- Prism (Twilio) ----------------------------------------------------------------------


@dataclass
class PrismPeer:
    """A running Prism mock of Twilio's 2010-04-01 API."""

    url: str
    log: list[str]


@pytest.fixture(scope="session")
def prism() -> Iterator[PrismPeer]:
    """Start Prism once; wait (bounded) until it says it listens and answers HTTP."""
    spec = twilio_spec()
    if not PRISM.exists():
        pytest.fail(f"Prism not installed at {PRISM}; run `make .peers/node_modules/.bin/prism`")
    if not spec.is_file():
        pytest.fail(f"Twilio OpenAPI spec not found at {spec}; set OMNICONSOLE_TWILIO_SPEC")
    port = free_port()
    process = subprocess.Popen(
        [str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(port), str(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log: list[str] = []
    listening = threading.Event()

    def drain() -> None:
        # Keep reading for the whole session so Prism never blocks on a full pipe.
        assert process.stdout is not None
        for line in process.stdout:
            log.append(line)
            if "Prism is listening" in line:
                listening.set()
        listening.set()  # exited: let the fixture notice

    reader = threading.Thread(target=drain, name="prism-log", daemon=True)
    reader.start()
    url = f"http://127.0.0.1:{port}"
    try:
        if not listening.wait(PRISM_START_TIMEOUT) or process.poll() is not None:
            pytest.fail("Prism did not start:\n" + "".join(log[-30:]))
        try:
            urllib.request.urlopen(f"{url}/2010-04-01/Accounts.json", timeout=10).close()
        except urllib.error.HTTPError as exc:
            exc.close()  # 401 without credentials: it answers, which is all we need
        yield PrismPeer(url, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=5)
        assert process.stdout is not None
        process.stdout.close()


@pytest_asyncio.fixture
async def twilio_proxy(prism: PrismPeer) -> AsyncIterator[FaultProxy]:
    """A fault-injecting proxy in front of Prism (forwards unless scripted)."""
    proxy = FaultProxy(prism.url)
    await proxy.start()
    yield proxy
    await proxy.close()


# --- FCM -------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def fcm_peer() -> AsyncIterator[FcmPeer]:
    """The loopback FCM HTTP v1 endpoint for project `omni-test`."""
    peer = FcmPeer(project_id="omni-test")
    await peer.start()
    yield peer
    await peer.close()
