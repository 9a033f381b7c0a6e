"""The console's client of the operator route (`adapters.http.operator`): agent actions.

Blocking (standard library HTTP): the console calls it from a worker thread. Each
action carries a fresh `request_id`, retried as the same id, so the service applies it
once however often the network makes us ask. The operator key travels only in the
`Authorization` header; it is never in a message or `repr`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from omniconsole.adapters.http.operator import CONSENT_PATH
from omniconsole.domain.operator import ConsentChange, OperatorError

__all__ = ["OperatorClient"]


@dataclass(frozen=True, slots=True)
class OperatorClient:
    """Agent actions through the running service at `url` (an `OperatorActions`)."""

    url: str
    key: str = field(repr=False)
    agent_name: str = "agent"
    timeout: float = 10.0
    attempts: int = 2

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"--service must be an http(s) URL, got {self.url!r}")
        object.__setattr__(self, "url", self.url.rstrip("/"))

    @property
    def agent(self) -> str:
        """Who the actions are recorded as."""
        return self.agent_name

    def describe(self) -> str:
        """The service's URL (never the key)."""
        return self.url

    def record_consent(self, customer: str, channel: str, *, opt_in: bool) -> ConsentChange:
        """Record an opt-in/out the customer asked for; raises `OperatorError` in words."""
        body = {
            "customer": customer,
            "channel": channel,
            "action": "opt_in" if opt_in else "opt_out",
            "agent": self.agent_name,
            "request_id": uuid.uuid4().hex,
        }
        answer = self._post(CONSENT_PATH, body)
        event = answer.get("event")
        event = event if isinstance(event, dict) else {}
        return ConsentChange(
            customer=customer,
            channel=channel,
            opted_in=opt_in,
            agent=str(event.get("agent", self.agent_name)),
            event_id=str(event.get("message_id", "")),
            duplicate=bool(answer.get("duplicate", False)),
        )

    def _post(self, path: str, body: Mapping[str, object]) -> dict[str, Any]:
        data = json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.key}"},
        )
        last = ""
        for _ in range(max(1, self.attempts)):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    answer = json.loads(response.read() or b"{}")
                    return answer if isinstance(answer, dict) else {}
            except urllib.error.HTTPError as exc:
                message = _message(exc)
                if exc.code == 401:
                    raise OperatorError(
                        f"the service refused the operator key ({message})"
                    ) from None
                if exc.code == 403:
                    raise OperatorError(
                        f"the service does not take agent actions ({message})"
                    ) from None
                if exc.code < 500:
                    raise OperatorError(f"the service refused: {message}") from None
                last = f"the service failed: {message}"
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                reason = getattr(exc, "reason", exc)
                last = f"cannot reach the service at {self.url}: {reason}"
        raise OperatorError(last)


def _message(exc: urllib.error.HTTPError) -> str:
    try:
        answer = json.loads(exc.read() or b"{}")
    except (ValueError, OSError):
        return f"HTTP {exc.code}"
    return (
        str(answer.get("message") or f"HTTP {exc.code}")
        if isinstance(answer, dict)
        else f"HTTP {exc.code}"
    )
