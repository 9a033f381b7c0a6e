"""Reading request bodies for the HTTP front: encoding, size and time limits.

- `Content-Encoding` must be `identity`, `gzip` or `deflate` (Segment's libraries gzip
  their batches): any other is 415, where it used to be read as plain text; a body
  that does not decode as its encoding says is 400, where it used to be a 500.
  (`br` is refused by aiohttp itself, with a 400, before a handler runs: it knows the
  name but has no decoder without the Brotli package.)
- Size is counted after decoding, so a small gzip bomb is 413 like a large body.
- Time: the whole body must arrive within `timeout` seconds, else 408 — a client that
  sends half a body and waits must not hold a handler (and its buffers) for ever.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from aiohttp import hdrs, web
from aiohttp.http_exceptions import BadHttpMessage
from aiohttp.web_protocol import RequestPayloadError
from multidict import MultiDictProxy

__all__ = ["ACCEPTED_ENCODINGS", "BodyError", "check_encoding", "read_body", "read_form"]

ACCEPTED_ENCODINGS: Final = frozenset({"identity", "gzip", "deflate"})


class BodyError(Exception):
    """A body that cannot be read; carries the HTTP status, an error code and why."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def check_encoding(request: web.Request) -> None:
    """415 unless the body's `Content-Encoding` is one we decode."""
    raw = request.headers.get(hdrs.CONTENT_ENCODING)
    if raw is None:
        return
    encoding = raw.strip().lower()
    if encoding not in ACCEPTED_ENCODINGS:
        raise BodyError(
            415,
            "unsupported_encoding",
            f"Content-Encoding {raw[:40]!r} is not supported; use gzip, deflate or none",
        )


def _too_slow(timeout: float) -> BodyError:
    return BodyError(408, "timeout", f"the request body did not arrive within {timeout:g} s")


def _undecodable(exc: BaseException) -> BodyError:
    encoding = "its Content-Encoding"
    return BodyError(400, "invalid_encoding", f"the body does not decode as {encoding}: {exc}")


async def read_body(request: web.Request, limit: int, timeout: float) -> bytes:
    """The decoded body, at most `limit` bytes, arrived within `timeout` seconds."""
    check_encoding(request)
    length = request.content_length
    # Content-Length is the compressed size when encoded; the loop checks the decoded size.
    if length is not None and length > limit and hdrs.CONTENT_ENCODING not in request.headers:
        raise BodyError(413, "too_large", f"request body over the {limit // 1024} KB limit")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.content.iter_any():
                size += len(chunk)
                if size > limit:
                    raise BodyError(
                        413, "too_large", f"request body over the {limit // 1024} KB limit"
                    )
                chunks.append(chunk)
    except TimeoutError:
        raise _too_slow(timeout) from None
    except (BadHttpMessage, RequestPayloadError) as exc:  # not gzip after all
        raise _undecodable(exc) from None
    return b"".join(chunks)


async def read_form(request: web.Request, timeout: float) -> MultiDictProxy[Any]:
    """The form-encoded body, arrived within `timeout` seconds."""
    check_encoding(request)
    try:
        async with asyncio.timeout(timeout):
            return await request.post()
    except TimeoutError:
        raise _too_slow(timeout) from None
    except (BadHttpMessage, RequestPayloadError) as exc:
        raise _undecodable(exc) from None
