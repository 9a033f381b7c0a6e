"""Live ingest under load, with providers idle, fast or saturated: events/s, p50/p99, RSS.

    .venv/bin/python benchmarks/serve_ingest.py                  # 20 s per mode
    .venv/bin/python benchmarks/serve_ingest.py --seconds 10 --modes fast,saturated

For each mode `omniconsole serve` runs as a subprocess on a fresh store, as in
production, while this process plays its providers on loopback and its clients:

- `none`: no channel configured (sends have nowhere to go: the engine alone);
- `fast`: an SMTP server and a Twilio-shaped HTTP server answering at once;
- `saturated`: the same answering `--provider-delay` seconds late (1 s), far slower
  than ingest decides sends, so the outbox backlog grows for the whole run.

`--clients` concurrent clients post Segment batches of `--batch` events (half
identifies, half `Order Completed` / `Fraud Suspected`, each deciding one email or SMS)
as fast as they are answered. Printed per mode: events acknowledged per second,
request latency p50/p99/max, the serve process's RSS at start, peak and end, and the
outbox backlog and sends in flight at the end (from /healthz).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

WRITE_KEY = "wk-bench"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class SlowSmtp:
    """aiosmtpd handler: accepts every message, answering the end of DATA late."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.count = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.count += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return "250 Message accepted for delivery"


class SlowTwilio:
    """A Twilio-shaped Messages endpoint answering 201 late (and an empty list)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.count = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create)
        app.router.add_get("/2010-04-01/Accounts/{sid}/Messages.json", self._list)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _create(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.count += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        sid = "SM" + uuid.uuid4().hex
        body = {"sid": sid, "status": "queued", "to": form.get("To"), "body": form.get("Body"),
                "account_sid": request.match_info["sid"], "direction": "outbound-api"}  # fmt: skip
        return web.json_response(body, status=201)

    async def _list(self, request: web.Request) -> web.Response:
        return web.json_response({"messages": [], "page": 0, "page_size": 50, "end": 0,
                                  "start": 0, "uri": request.path, "next_page_uri": None})  # fmt: skip


@dataclass
class Result:
    mode: str
    events: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    rss_start: int = 0
    rss_peak: int = 0
    rss_end: int = 0
    backlog: int = 0
    in_flight: int = 0
    delivered: int = 0

    def percentile(self, p: float) -> float:
        values = sorted(self.latencies)
        if not values:
            return 0.0
        return values[min(len(values) - 1, int(p * len(values)))] * 1000


def batch_of(client: int, number: int, size: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for n in range(size // 2):
        who = f"c{client}-{number}-{n}"
        if n % 2:
            traits, trigger = {"email": f"{who}@example.com"}, "Order Completed"
        else:
            traits, trigger = (
                {"phone": f"+1{client % 10}{number % 10**6:06d}{n % 1000:03d}"},
                "Fraud Suspected",
            )
        items.append({"type": "identify", "userId": who, "messageId": f"{who}:i", "traits": traits})
        items.append({"type": "track", "userId": who, "event": trigger, "messageId": f"{who}:t",
                      "properties": {"order_id": f"A{number}"}})  # fmt: skip
    return items


async def drive(url: str, result: Result, clients: int, size: int, seconds: float) -> None:
    auth = {"Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()}
    stop_at = time.perf_counter() + seconds

    async def client(index: int, session: aiohttp.ClientSession) -> None:
        number = 0
        while time.perf_counter() < stop_at:
            body = json.dumps({"batch": batch_of(index, number, size)})
            number += 1
            started = time.perf_counter()
            try:
                async with session.post(f"{url}/v1/batch", data=body, headers={
                        **auth, "Content-Type": "application/json"}) as response:  # fmt: skip
                    payload = await response.json()
                    ok = response.status == 200
            except (TimeoutError, aiohttp.ClientError):
                ok, payload = False, {}
            result.latencies.append(time.perf_counter() - started)
            if ok:
                result.events += int(payload["accepted"])
            else:
                result.errors += 1

    began = time.perf_counter()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        await asyncio.gather(*(client(i, session) for i in range(clients)))
    result.seconds = time.perf_counter() - began


async def run_mode(mode: str, args: argparse.Namespace, workdir: Path) -> Result:
    result = Result(mode)
    delay = args.provider_delay if mode == "saturated" else 0.0
    smtp_handler, twilio = SlowSmtp(delay), SlowTwilio(delay)
    smtp = Controller(smtp_handler, hostname="127.0.0.1", port=free_port())
    port = free_port()
    env = {**os.environ, "OMNICONSOLE_WRITE_KEY": WRITE_KEY,
           "OMNICONSOLE_PUBLIC_URL": f"http://127.0.0.1:{port}"}  # fmt: skip
    if mode != "none":
        smtp.start()
        await twilio.start()
        env.update({
            "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port), "SMTP_FROM": "b@example.com",
            "SMTP_STARTTLS": "false", "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": "bench-token", "TWILIO_SMS_FROM": "+15005550006",
            "TWILIO_API_BASE_URL": twilio.url, "OMNICONSOLE_RATE_EMAIL": "10000",
            "OMNICONSOLE_RATE_TWILIO": "10000", "SMTP_TIMEOUT": "30", "TWILIO_TIMEOUT": "30",
        })  # fmt: skip
    db = workdir / f"{mode}.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "omniconsole", "serve", "--db", str(db), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    ready = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            if "listening on" in line:
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        if not await asyncio.to_thread(ready.wait, 60) or process.poll() is not None:
            raise SystemExit(f"{mode}: serve did not start")
        result.rss_start = rss_kb(process.pid)
        peak = [result.rss_start]
        sampling = True

        async def sample() -> None:
            while sampling:
                peak[0] = max(peak[0], rss_kb(process.pid))
                await asyncio.sleep(0.25)

        sampler = asyncio.create_task(sample())
        await drive(f"http://127.0.0.1:{port}", result, args.clients, args.batch, args.seconds)
        sampling = False
        await sampler
        result.rss_peak, result.rss_end = peak[0], rss_kb(process.pid)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/healthz") as response,
        ):
            health = await response.json()
        result.in_flight = int(health.get("in_flight", 0))
        result.backlog = sum(
            sum(v for k, v in c.items() if k != "oldest") for c in health.get("outbox", {}).values()
        )
        result.delivered = smtp_handler.count + twilio.count
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, 60)
        except subprocess.TimeoutExpired:
            process.kill()
        if mode != "none":
            smtp.stop()
            await twilio.close()
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="load per mode")
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
    parser.add_argument("--batch", type=int, default=20, help="events per /v1/batch call")
    parser.add_argument("--provider-delay", type=float, default=1.0,
                        help="seconds a saturated provider takes per message")  # fmt: skip
    parser.add_argument("--modes", default="none,fast,saturated")
    parser.add_argument("--workdir", type=Path, default=None)
    return parser.parse_args(argv)


async def main_async(args: argparse.Namespace) -> None:
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="serve-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results = [await run_mode(mode, args, workdir) for mode in args.modes.split(",")]
    print(f"\n{args.clients} clients x batches of {args.batch} events, {args.seconds:g} s per mode")
    print(f"{'mode':<10} {'events/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>6} "
          f"{'RSS start/peak/end MB':>22} {'delivered':>9} {'backlog':>8} {'in flight':>9}")  # fmt: skip
    for r in results:
        rss = f"{r.rss_start / 1024:.0f}/{r.rss_peak / 1024:.0f}/{r.rss_end / 1024:.0f}"
        print(f"{r.mode:<10} {r.events / r.seconds:>9.0f} {r.percentile(0.5):>8.1f} "
              f"{r.percentile(0.99):>8.1f} {max(r.latencies, default=0) * 1000:>8.1f} "
              f"{r.errors:>6} {rss:>22} {r.delivered:>9} {r.backlog:>8} {r.in_flight:>9}")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    asyncio.run(main_async(parse_args(argv)))


if __name__ == "__main__":
    main()
