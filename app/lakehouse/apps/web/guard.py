"""Who may write through the demo page: its own page, nobody else's (CSRF), in bounded amounts.

A page on another origin can make a browser POST to 127.0.0.1 (a "simple" request needs no
preflight: a text/plain body is one). So a write must be JSON — which a cross-origin page can only
send after a CORS preflight this app never allows — and must not come from another site: the
browser's `Sec-Fetch-Site` says so, and where an `Origin` is sent it must be this host. Bodies
over MAX_BODY bytes are refused before they are read, and writes beyond WRITES_PER_S (bursts of
WRITE_BURST) get 429: the page is one person's, each write is one source transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

MAX_BODY = 16 * 1024
WRITES_PER_S = 5.0
WRITE_BURST = 20
SAFE = {"GET", "HEAD", "OPTIONS"}


def refusal(method: str, headers: Mapping[str, str]) -> tuple[int, str] | None:
    """Why a request must not write (status, message), or None if it may. `headers`: lower-case names."""
    if method in SAFE:
        return None
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return 403, f"cross-site write refused (Sec-Fetch-Site: {site})"
    origin = headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != headers.get("host"):
        return 403, f"write from another origin refused ({origin})"
    if headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        return 415, "send JSON (Content-Type: application/json)"
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        return 400, "bad Content-Length"
    if length > MAX_BODY:
        return 413, f"request body over {MAX_BODY} bytes"
    return None


class Bucket:
    """Token bucket: `rate` per second, up to `burst` at once."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens, self.at = float(burst), clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class SameOriginWrites:
    """ASGI middleware: answers a refused write with its reason, passes everything else on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.writes = Bucket(WRITES_PER_S, WRITE_BURST)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            refused = refusal(request.method, request.headers)
            if refused is None and request.method not in SAFE and not self.writes.take():
                refused = 429, f"too many writes: at most {WRITES_PER_S:g} per second"
            if refused is not None:
                status, message = refused
                await JSONResponse({"error": message}, status_code=status)(scope, receive, send)
                return
        await self.app(scope, receive, send)
