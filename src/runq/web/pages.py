"""The dashboard's HTML pages (Jinja2 templates with autoescape on) and the form actions.

Every page is a plain GET; every action is a POST carrying the CSRF token
(``security.Guard.csrf_ok``), answered by a redirect to the page to show next with a short
message (``?msg=``), which the template escapes like everything else.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from runq import Controller, TaskStatus, UnknownTaskError, __version__
from runq.web import views
from runq.web.actions import (
    SCHEDULE_ACTIONS,
    TASK_ACTIONS,
    WORKER_COMMANDS,
    schedule_action,
    task_action,
    worker_action,
)
from runq.web.sampler import Sampler
from runq.web.security import COOKIE, CSRF_FIELD, Guard

__all__ = ["STATUSES", "redirect", "routes", "templates"]

#: The statuses a listing can filter by.
STATUSES = [s.value for s in TaskStatus if s is not TaskStatus.MISSING]


def _when(value: float | None) -> str:
    """An epoch time as UTC text."""
    if value is None:
        return "—"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _seconds(value: float | None) -> str:
    """A duration, short."""
    if value is None or math.isnan(value):
        return "—"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f} %"


def templates() -> Environment:
    """The template environment: autoescape on for every template."""
    env = Environment(
        loader=PackageLoader("runq.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["seconds"] = _seconds
    env.filters["percent"] = _percent
    env.globals["version"] = __version__
    env.globals["statuses"] = STATUSES
    return env


def redirect(path: str, **params: Any) -> RedirectResponse:
    """A 303 to ``path`` with the query ``params`` that are not None."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return RedirectResponse(f"{path}?{query}" if query else path, status_code=303)


def _int_or_none(text: str | None) -> int | None:
    if text is None or not text.strip():
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _optional(text: str | None) -> str | None:
    return text.strip() if text and text.strip() else None


def routes(ctl: Controller, guard: Guard, sampler: Sampler) -> list[BaseRoute]:
    """The page and form routes of the dashboard of ``ctl``."""
    env = templates()
    style = resources.files("runq.web").joinpath("static", "style.css").read_text("utf-8")
    extra_pages = ["schedules", "limits"]

    def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        html = env.get_template(name).render(
            request=request,
            namespace=ctl.queue_id,
            address=ctl.address,
            csrf=guard.csrf,
            csrf_field=CSRF_FIELD,
            token_needed=guard.token is not None,
            message=request.query_params.get("msg"),
            extra_pages=extra_pages,
            **context,
        )
        return HTMLResponse(html, status_code=status_code)

    def overview(request: Request) -> Response:
        latest = sampler.latest()  # counts read by the sampler: not once per page view
        return render(
            request,
            "overview.html",
            page="overview",
            counts={s: latest["counts"].get(s, 0) for s in STATUSES},
            history=sampler.history(),
            workers=latest["workers"],
            queues=[{"name": q, "waiting": n} for q, n in latest["queues"].items()],
        )

    def queues(request: Request) -> Response:
        return render(request, "queues.html", page="queues", **views.queues_view(ctl))

    def tasks(request: Request) -> Response:
        params = request.query_params
        lookup = _optional(params.get("id"))
        if lookup is not None:
            if views.task_exists(ctl, lookup):
                return redirect(f"/tasks/{lookup}")
            return redirect("/tasks", msg=f"no task {lookup[:80]} in {ctl.queue_id}")
        status = _optional(params.get("status"))
        if status is not None and status not in STATUSES:
            status = None
        data = views.tasks_view(
            ctl,
            status,
            _optional(params.get("queue")),
            _optional(params.get("name")),
            _int_or_none(params.get("after")),
        )
        filters = {k: v for k, v in data["filters"].items() if v}
        next_url = None
        if data["after"] is not None:
            next_url = "/tasks?" + urlencode({**filters, "after": data["after"]})
        first_url = "/tasks?" + urlencode(filters) if params.get("after") else None
        return render(
            request, "tasks.html", page="tasks", next_url=next_url, first_url=first_url, **data
        )

    def task(request: Request) -> Response:
        tid = request.path_params["tid"]
        try:
            data = views.task_view(ctl, tid)
        except UnknownTaskError:
            return render(request, "missing.html", status_code=404, page="tasks", tid=tid)
        return render(request, "task.html", page="tasks", task=data, actions=TASK_ACTIONS)

    def workers(request: Request) -> Response:
        return render(
            request,
            "workers.html",
            page="workers",
            commands=WORKER_COMMANDS,
            **views.workers_view(ctl),
        )

    def schedules(request: Request) -> Response:
        return render(
            request,
            "schedules.html",
            page="schedules",
            actions=SCHEDULE_ACTIONS,
            **views.schedules_view(ctl),
        )

    def limits(request: Request) -> Response:
        return render(request, "limits.html", page="limits", **views.limits_view(ctl))

    async def act_on_schedule(request: Request) -> Response:
        form = await request.form()
        if not guard.csrf_ok(request, _form_text(form.get(CSRF_FIELD))):
            return Response("cross-site request refused (CSRF)", status_code=403)
        name, action = request.path_params["name"], request.path_params["action"]
        done = await run_in_threadpool(schedule_action, ctl, name, action)
        return redirect("/schedules", msg=done["message"])

    async def act_on_task(request: Request) -> Response:
        form = await request.form()
        if not guard.csrf_ok(request, _form_text(form.get(CSRF_FIELD))):
            return Response("cross-site request refused (CSRF)", status_code=403)
        tid, action = request.path_params["tid"], request.path_params["action"]
        done = await run_in_threadpool(task_action, ctl, tid, action)
        sampler.poke()
        target = "/tasks" if done["task_id"] is None else f"/tasks/{done['task_id']}"
        return redirect(target, msg=done["message"])

    async def act_on_worker(request: Request) -> Response:
        form = await request.form()
        if not guard.csrf_ok(request, _form_text(form.get(CSRF_FIELD))):
            return Response("cross-site request refused (CSRF)", status_code=403)
        wid, command = request.path_params["wid"], request.path_params["command"].upper()
        done = await run_in_threadpool(worker_action, ctl, wid, command)
        sampler.poke()
        return redirect("/workers", msg=done["message"])

    def login_page(request: Request) -> Response:
        target = request.query_params.get("next", "/")
        return render(
            request, "login.html", page="login", style=style, failed=False, next_path=target
        )

    async def login(request: Request) -> Response:
        form = await request.form()
        given = _form_text(form.get("token")) or ""
        target = _form_text(form.get("next")) or "/"
        if not guard.login_ok(given):
            return render(
                request,
                "login.html",
                status_code=401,
                page="login",
                style=style,
                failed=True,
                next_path=target,
            )
        if not target.startswith("/") or target.startswith("//"):
            target = "/"  # never an open redirect to another site
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, given.strip(), httponly=True, samesite="strict")
        return response

    async def logout(request: Request) -> Response:
        form = await request.form()
        if not guard.csrf_ok(request, _form_text(form.get(CSRF_FIELD))):
            return Response("cross-site request refused (CSRF)", status_code=403)
        response = redirect("/login")
        response.delete_cookie(COOKIE)
        return response

    return [
        Route("/", overview),
        Route("/queues", queues),
        Route("/tasks", tasks),
        Route("/tasks/{tid}", task),
        Route("/tasks/{tid}/{action}", act_on_task, methods=["POST"]),
        Route("/workers", workers),
        Route("/workers/{wid}/{command}", act_on_worker, methods=["POST"]),
        Route("/schedules", schedules),
        Route("/schedules/{name}/{action}", act_on_schedule, methods=["POST"]),
        Route("/limits", limits),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]


def _form_text(value: object) -> str | None:
    """A form field as text (an uploaded file is not one)."""
    return value if isinstance(value, str) else None
