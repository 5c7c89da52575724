"""The dashboard's JSON API, under ``/api/``: the data of the pages (``views.py``) and the same
actions as the forms (``actions.py``), which need the CSRF token (``X-CSRF-Token`` header) or
the bearer token.

``GET /api/overview``, ``/api/queues``, ``/api/tasks?status=&queue=&name=&after=&limit=``,
``/api/tasks/{id}``, ``/api/workers``, ``/api/schedules``, ``/api/limits``;
``POST /api/tasks/{id}/{cancel|retry|delete}``, ``/api/workers/{id}/{PAUSE|RESUME|STOP|PING}``,
``/api/schedules/{name}/{pause|resume}``.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from runq import Controller, RunqError, TaskStatus, UnknownTaskError
from runq.web import views
from runq.web.actions import schedule_action, task_action, worker_action
from runq.web.sampler import Sampler
from runq.web.security import Guard

__all__ = ["routes"]

_MAX_LIMIT = 1000


def _error(message: str, status_code: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status_code)


def routes(ctl: Controller, guard: Guard, sampler: Sampler) -> list[BaseRoute]:
    """The ``/api/`` routes of the dashboard of ``ctl``."""

    def overview(request: Request) -> Response:
        return JSONResponse(
            {
                "namespace": ctl.queue_id,
                **sampler.latest(),
                "history": sampler.history(),
            }
        )

    def queues(request: Request) -> Response:
        return JSONResponse(views.queues_view(ctl))

    def tasks(request: Request) -> Response:
        params = request.query_params
        status = params.get("status") or None
        if status is not None and status not in set(TaskStatus):
            return _error(f"unknown status {status[:40]!r}", 400)
        try:
            after = int(params["after"]) if params.get("after") else None
            limit = int(params.get("limit") or views.PAGE_SIZE)
        except ValueError:
            return _error("after and limit must be integers", 400)
        if not 1 <= limit <= _MAX_LIMIT:
            return _error(f"limit must be from 1 to {_MAX_LIMIT}", 400)
        try:
            data = views.tasks_view(
                ctl, status, params.get("queue") or None, params.get("name") or None, after, limit
            )
        except RunqError as exc:
            return _error(str(exc), 400)
        return JSONResponse(data)

    def task(request: Request) -> Response:
        try:
            return JSONResponse(views.task_view(ctl, request.path_params["tid"]))
        except UnknownTaskError as exc:
            return _error(str(exc), 404)

    def workers(request: Request) -> Response:
        return JSONResponse(views.workers_view(ctl))

    def schedules(request: Request) -> Response:
        return JSONResponse(views.schedules_view(ctl))

    def limits(request: Request) -> Response:
        return JSONResponse(views.limits_view(ctl))

    async def act_on_schedule(request: Request) -> Response:
        if not guard.csrf_ok(request, None):
            return _error("cross-site request refused (CSRF)", 403)
        done = await run_in_threadpool(
            schedule_action, ctl, request.path_params["name"], request.path_params["action"]
        )
        return JSONResponse(done, status_code=200 if done["ok"] else 409)

    async def act_on_task(request: Request) -> Response:
        if not guard.csrf_ok(request, None):
            return _error("cross-site request refused (CSRF)", 403)
        done = await run_in_threadpool(
            task_action, ctl, request.path_params["tid"], request.path_params["action"]
        )
        sampler.poke()
        return JSONResponse(done, status_code=200 if done["ok"] else 409)

    async def act_on_worker(request: Request) -> Response:
        if not guard.csrf_ok(request, None):
            return _error("cross-site request refused (CSRF)", 403)
        command = request.path_params["command"].upper()
        done = await run_in_threadpool(worker_action, ctl, request.path_params["wid"], command)
        sampler.poke()
        return JSONResponse(done, status_code=200 if done["ok"] else 409)

    return [
        Route("/api/overview", overview),
        Route("/api/queues", queues),
        Route("/api/tasks", tasks),
        Route("/api/tasks/{tid}", task),
        Route("/api/tasks/{tid}/{action}", act_on_task, methods=["POST"]),
        Route("/api/workers", workers),
        Route("/api/workers/{wid}/{command}", act_on_worker, methods=["POST"]),
        Route("/api/schedules", schedules),
        Route("/api/schedules/{name}/{action}", act_on_schedule, methods=["POST"]),
        Route("/api/limits", limits),
    ]
