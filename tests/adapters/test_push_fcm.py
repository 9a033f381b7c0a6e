"""FcmPushAdapter (pyfcm in a thread) against a strict loopback FCM HTTP v1 peer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import google.auth.credentials
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fcm_peer import FcmPeer, fcm_error

from omniconsole.adapters.channels.push_fcm import FcmPushAdapter
from omniconsole.adapters.channels.resilience import RetryPolicy
from omniconsole.adapters.channels.settings import FcmSettings
from omniconsole.domain.channels import Category, Channel
from omniconsole.domain.messages import OutboundMessage, Recipient

STUB_TOKEN = "stub-access-token"


class StubCredentials(google.auth.credentials.Credentials):  # type: ignore[misc]
    """google-auth credentials whose refresh hands out a fixed token, no network."""

    def __init__(self, token: str = STUB_TOKEN) -> None:
        super().__init__()
        self._fixed = token
        self.refreshes = 0

    def refresh(self, request: Any) -> None:
        self.refreshes += 1
        self.token = self._fixed


class NoSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def message(token: str = "device-token-1") -> OutboundMessage:
    return OutboundMessage(
        message_id="m-7",
        channel=Channel.PUSH,
        category=Category.PROMOTIONAL,
        journey="price_drop",
        step="alert",
        recipient=Recipient(customer="c-1", push_token=token),
        subject="Price drop",
        text="Boots are now $20.",
    )


@pytest_asyncio.fixture
async def make_adapter(
    fcm_peer: FcmPeer,
) -> AsyncIterator[Callable[..., FcmPushAdapter]]:
    made: list[FcmPushAdapter] = []

    def make(**kwargs: Any) -> FcmPushAdapter:
        settings = kwargs.pop(
            "settings",
            FcmSettings(Path("/nonexistent.json"), "omni-test", api_base_url=fcm_peer.url),
        )
        kwargs.setdefault("rate_per_second", 0)
        kwargs.setdefault("sleep", NoSleep())
        adapter = FcmPushAdapter(settings, **kwargs)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        await adapter.aclose()


@pytest.mark.asyncio
async def test_sends_a_valid_v1_message(
    fcm_peer: FcmPeer, make_adapter: Callable[..., FcmPushAdapter]
) -> None:
    fcm_peer.issued_tokens.add(STUB_TOKEN)
    credentials = StubCredentials()
    adapter = make_adapter(credentials=credentials)
    result = await adapter.send(message())

    assert result.ok, result
    assert result.provider_id == "projects/omni-test/messages/1"
    [sent] = fcm_peer.messages
    assert sent["token"] == "device-token-1"
    assert sent["notification"] == {"title": "Price drop", "body": "Boots are now $20."}
    assert sent["data"] == {
        "message_id": "m-7",
        "journey": "price_drop",
        "step": "alert",
        "category": "promotional",
    }
    assert credentials.refreshes == 1


@pytest.mark.asyncio
async def test_service_account_file_gets_a_token_from_the_token_uri(
    fcm_peer: FcmPeer, make_adapter: Callable[..., FcmPushAdapter], tmp_path: Path
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    fcm_peer.public_key_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    service_account = tmp_path / "service-account.json"
    service_account.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "other-project",  # FCM_PROJECT_ID must win
                "private_key_id": "k1",
                "private_key": private_pem,
                "client_email": "omni@omni-test.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": f"{fcm_peer.url}/token",
            }
        )
    )
    adapter = make_adapter(
        settings=FcmSettings(service_account, "omni-test", api_base_url=fcm_peer.url)
    )
    result = await adapter.send(message())

    assert result.ok, result
    assert fcm_peer.token_requests == 1
    assert fcm_peer.statuses == [200]


@pytest.mark.asyncio
async def test_unregistered_token_is_permanent(
    fcm_peer: FcmPeer, make_adapter: Callable[..., FcmPushAdapter]
) -> None:
    fcm_peer.issued_tokens.add(STUB_TOKEN)
    fcm_peer.unregistered.add("stale-token")
    sleep = NoSleep()
    adapter = make_adapter(credentials=StubCredentials(), sleep=sleep)
    result = await adapter.send(message("stale-token"))

    assert (result.ok, result.error_code, result.permanent) == (False, "unregistered", True)
    assert fcm_peer.statuses == [404]
    assert sleep.delays == []


@pytest.mark.asyncio
async def test_invalid_argument_is_permanent(
    fcm_peer: FcmPeer, make_adapter: Callable[..., FcmPushAdapter]
) -> None:
    fcm_peer.issued_tokens.add(STUB_TOKEN)
    fcm_peer.script(
        (400, fcm_error(400, "INVALID_ARGUMENT", "Invalid registration", "INVALID_ARGUMENT"))
    )
    adapter = make_adapter(credentials=StubCredentials())
    result = await adapter.send(message())

    assert (result.ok, result.error_code, result.permanent) == (False, "invalid_argument", True)
    assert fcm_peer.statuses == [400]


@pytest.mark.asyncio
async def test_unavailable_is_retried_then_succeeds(
    fcm_peer: FcmPeer, make_adapter: Callable[..., FcmPushAdapter]
) -> None:
    fcm_peer.issued_tokens.add(STUB_TOKEN)
    fcm_peer.script((503, fcm_error(503, "UNAVAILABLE", "The service is currently unavailable.")))
    sleep = NoSleep()
    adapter = make_adapter(credentials=StubCredentials(), sleep=sleep, rand=lambda: 0.5)
    result = await adapter.send(message())

    assert result.ok, result
    assert fcm_peer.statuses == [503, 200]
    assert sleep.delays == [0.25]


@pytest.mark.asyncio
async def test_quota_exceeded_fails_transiently_after_retries(
    fcm_peer: FcmPeer, make_adapter: Callable[..., FcmPushAdapter]
) -> None:
    fcm_peer.issued_tokens.add(STUB_TOKEN)
    quota = (429, fcm_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded", "QUOTA_EXCEEDED"))
    fcm_peer.script(quota, quota, quota)
    adapter = make_adapter(credentials=StubCredentials(), retry=RetryPolicy(attempts=3))
    result = await adapter.send(message())

    assert (result.ok, result.error_code, result.permanent) == (False, "quota_exceeded", False)
    assert fcm_peer.statuses == [429, 429, 429]
    assert adapter.health() == {Channel.PUSH: "degraded"}


@pytest.mark.asyncio
async def test_token_the_peer_did_not_issue_is_rejected(
    fcm_peer: FcmPeer, make_adapter: Callable[..., FcmPushAdapter]
) -> None:
    adapter = make_adapter(credentials=StubCredentials("forged"))
    result = await adapter.send(message())

    assert (result.ok, result.error_code, result.permanent) == (False, "unauthenticated", True)
    assert fcm_peer.statuses == [401]


@pytest.mark.asyncio
async def test_peer_unreachable_is_a_transient_connection_error(
    make_adapter: Callable[..., FcmPushAdapter],
) -> None:
    from peers import free_port

    adapter = make_adapter(
        credentials=StubCredentials(),
        settings=FcmSettings(
            Path("/x"), "omni-test", api_base_url=f"http://127.0.0.1:{free_port()}"
        ),
        retry=RetryPolicy(attempts=2),
    )
    result = await adapter.send(message())

    assert (result.ok, result.error_code, result.permanent) == (False, "connection", False)
