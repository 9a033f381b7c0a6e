"""Real local peers shared by the tests: aiosmtpd, Prism (Twilio's OpenAPI), an FCM peer.

Prism starts once per session (10-15 s); everything else is per test and cheap. When any
selected test needs Prism, the session checks the npm-installed peers right after
collection and stops at once, in one line, if one is missing.
"""

from __future__ import annotations

import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from fault_proxy import FaultProxy
from fcm_peer import FcmPeer
from peers import (
    PRISM,
    PRISM_START_TIMEOUT,
    LoopbackController,
    PrismPeer,
    SmtpRecorder,
    free_port,
    peer_problems,
    twilio_spec,
)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Stop before the first test if a selected test needs a peer that is not there."""
    if any("prism" in getattr(item, "fixturenames", ()) for item in session.items):
        problems = peer_problems()
        if problems:
            pytest.exit("test peers missing: " + "; ".join(problems), returncode=1)


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


@pytest.fixture(scope="session")
def prism() -> Iterator[PrismPeer]:
    """Start Prism once; wait (bounded) until it says it listens and answers HTTP."""
    spec = twilio_spec()  # checked by pytest_collection_finish before any test ran
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


# --- PostgreSQL (tests marked `postgres`) ---------------------------------------------

from pg_fixtures import pg_server, pg_url  # noqa: E402, F401  (fixtures, by name)
