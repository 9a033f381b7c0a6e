"""The service's Prometheus metrics, behind a few typed methods the runtime calls.

Each `Metrics` owns a private `CollectorRegistry`, so tests and several services in
one process never share counters. Label values are bounded sets (event kinds,
channels, outcomes, reason codes), never customer ids or free text. All methods are
thread-safe (prometheus_client locks internally) and may be called from any thread.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

__all__ = ["CONTENT_TYPE", "Metrics"]

#: Content type of `Metrics.render()`: Prometheus text exposition format 0.0.4.
CONTENT_TYPE: str = CONTENT_TYPE_LATEST

# Adapter calls go to SMTP, Twilio and FCM: tens of milliseconds to tens of seconds.
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """A registry of the service's counters, gauges and histograms."""

    def __init__(self, namespace: str = "omniconsole") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self._events = Counter(
            "events_ingested",
            "Events received for ingest, by type and outcome (accepted, duplicate, rejected).",
            ["kind", "outcome"],
            namespace=namespace,
            registry=reg,
        )
        self._sends = Counter(
            "sends",
            "Messages handed to a channel adapter, by channel and outcome.",
            ["channel", "outcome"],
            namespace=namespace,
            registry=reg,
        )
        self._decisions = Counter(
            "governor_decisions",
            "Governor decisions, by ledger reason code ('sent' for a send).",
            ["reason"],
            namespace=namespace,
            registry=reg,
        )
        self._latency = Histogram(
            "adapter_latency_seconds",
            "Time a channel adapter took to deliver one message.",
            ["channel"],
            namespace=namespace,
            registry=reg,
            buckets=_LATENCY_BUCKETS,
        )
        self._queues = Gauge(
            "queue_depth",
            "Items waiting in a named runtime queue.",
            ["queue"],
            namespace=namespace,
            registry=reg,
        )
        self._webhooks = Counter(
            "webhooks",
            "Twilio webhooks received, by hook (status, inbound) and outcome.",
            ["hook", "outcome"],
            namespace=namespace,
            registry=reg,
        )
        self._requests = Counter(
            "http_requests",
            "HTTP requests served, by route and status code.",
            ["route", "status"],
            namespace=namespace,
            registry=reg,
        )

    def event_ingested(self, kind: str, outcome: str, n: int = 1) -> None:
        """Count `n` events of `kind` (identify, track, …) with `outcome`."""
        if n:
            self._events.labels(kind=kind, outcome=outcome).inc(n)

    def send_recorded(self, channel: str, outcome: str) -> None:
        """Count one send on `channel` with `outcome` (sent, failed, dry_run, …)."""
        self._sends.labels(channel=channel, outcome=outcome).inc()

    def decision(self, reason: str) -> None:
        """Count one governor decision; `reason` is the ledger reason code or `sent`."""
        self._decisions.labels(reason=reason).inc()

    def adapter_latency(self, channel: str, seconds: float) -> None:
        """Observe how long one adapter call on `channel` took."""
        self._latency.labels(channel=channel).observe(seconds)

    def queue_depth(self, name: str, n: int) -> None:
        """Set the current depth of queue `name`."""
        self._queues.labels(queue=name).set(n)

    def webhook_received(self, hook: str, outcome: str) -> None:
        """Count one Twilio webhook (`status` or `inbound`) with `outcome`."""
        self._webhooks.labels(hook=hook, outcome=outcome).inc()

    def request_served(self, route: str, status: int) -> None:
        """Count one HTTP request; `route` is the route pattern, not the raw path."""
        self._requests.labels(route=route, status=str(status)).inc()

    def render(self) -> bytes:
        """The registry in Prometheus text exposition format (see `CONTENT_TYPE`)."""
        return generate_latest(self.registry)
