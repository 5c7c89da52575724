"""The dashboard's ASGI application (Starlette): ``create_app(ctl, token)``.

Pages (``pages.py``) and the JSON API (``api.py``, under ``/api/``) render the same data
(``views.py``), read and changed only through the public API of the ``Controller`` given.
The token gate, the CSRF check (``security.py``) and the security headers wrap every route;
a background sampler (``sampler.py``) feeds the live updates (``/events``, server-sent events),
the charts and ``/metrics``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from runq import Controller
from runq.web import api, pages
from runq.web.metrics import NamespaceCollector
from runq.web.sampler import Sampler
from runq.web.security import Guard

__all__ = ["create_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Seconds between two live updates of one browser.
LIVE_PERIOD_S = 1.0
_LIVE_IDS_MAX = 200
_OPEN_PATHS = ("/login",)
_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        b"script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


class Gate:
    """ASGI middleware: the token check (``Guard.allowed``) before any route, and the
    security headers on every response."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        request = Request(scope)
        if scope["path"] in _OPEN_PATHS or self.guard.allowed(request):
            await self.app(scope, receive, send_with_headers)
            return
        refused: Response
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            refused = pages.redirect("/login", next=request.url.path)
        else:
            refused = PlainTextResponse(
                "a token is needed: Authorization: Bearer <token>, or log in at /login",
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        await refused(scope, receive, send_with_headers)


def _live(ctl: Controller, sampler: Sampler, ids: list[str]) -> dict[str, Any]:
    """One live update: the latest sample, the history, the statuses of ``ids`` and the
    workers' statuses and tasks."""
    statuses = ctl.status(ids, follow=False) if ids else []
    workers = ctl.workers.status()
    running = ctl.workers.task_id(list(workers))
    return {
        **sampler.latest(),
        "history": sampler.history()[-120:],
        "tasks": {t: str(s) for t, s in zip(ids, statuses, strict=True)},
        "worker_status": {w: str(s) for w, s in workers.items()},
        "worker_task": running,
    }


def create_app(ctl: Controller, token: str | None = None, sample_s: float = 2.0) -> Starlette:
    """The dashboard of ``ctl``'s namespace. With ``token``, every request but the login
    page needs it (``security.py``). ``sample_s``: the shortest time between two samples of
    the namespace (``sampler.py``)."""
    guard = Guard(token)
    registry = CollectorRegistry(auto_describe=False)
    sampler = Sampler(ctl, registry, min_interval_s=sample_s)
    registry.register(NamespaceCollector(ctl, sampler.latest))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(sampler.start)
        try:
            yield
        finally:
            await run_in_threadpool(sampler.stop)

    async def events(request: Request) -> Response:
        wanted = request.query_params.get("tasks", "")
        ids = list(dict.fromkeys(i for i in wanted.split(",") if i))[:_LIVE_IDS_MAX]

        async def stream() -> AsyncIterator[str]:
            last = ""
            yield "retry: 2000\n\n"
            while not await request.is_disconnected():
                payload = json.dumps(await run_in_threadpool(_live, ctl, sampler, ids))
                yield f"event: update\ndata: {payload}\n\n" if payload != last else ": idle\n\n"
                last = payload
                await asyncio.sleep(LIVE_PERIOD_S)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    static = resources.files("runq.web").joinpath("static")
    routes = [
        *pages.routes(ctl, guard, sampler),
        *api.routes(ctl, guard, sampler),
        Route("/events", events),
        Route("/metrics", metrics),
        Mount("/static", app=StaticFiles(directory=str(static)), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(Gate, guard=guard)
    return app
