"""The dashboard's token, its protection against cross-site requests, its JSON API and
``/metrics``, on both backends, against a real ``runq web`` process (the login through a real
browser)."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

import runq
from helpers import until
from taskfns import add, fail
from web.conftest import WebServer

_WAIT_S = 60.0
TOKEN = "s3cret-token-for-tests"


def _csrf(client: httpx.Client) -> str:
    """The CSRF token a page of the dashboard carries."""
    found = re.search(r'data-csrf="([^"]+)"', client.get("/tasks").text)
    assert found is not None
    return found.group(1)


def test_with_a_token_every_request_needs_it(
    ctl: runq.Controller, web: Callable[..., WebServer]
) -> None:
    tid = ctl.enqueue(add, (1, 2))
    server = web(token=TOKEN)
    with server.client() as anonymous:
        for path in (
            "/",
            "/tasks",
            f"/tasks/{tid}",
            "/workers",
            "/api/tasks",
            "/metrics",
            "/events",
            "/static/app.js",
            "/api/overview",
        ):
            answer = anonymous.get(path)
            assert answer.status_code == 401, path
            assert "runq" not in answer.text.lower() or "token" in answer.text.lower()
        assert anonymous.get("/", headers={"Accept": "text/html"}).status_code == 303
        assert anonymous.get("/login").status_code == 200
        assert anonymous.post("/login", data={"token": "wrong"}).status_code == 401
        assert anonymous.post(f"/api/tasks/{tid}/cancel").status_code == 401
    with server.client(headers={"Authorization": "Bearer wrong-token"}) as wrong:
        assert wrong.get("/api/tasks").status_code == 401
    with server.client(headers={"Authorization": f"Bearer {TOKEN}"}) as bearer:
        assert bearer.get("/api/tasks").json()["tasks"][0]["id"] == tid
        assert bearer.get("/metrics").status_code == 200
    assert ctl.status(tid) == runq.TaskStatus.PENDING
    # logged in by the cookie, a POST still needs the CSRF token (the cookie alone is what a
    # cross-site form would send)
    with server.client() as client:
        assert client.post("/login", data={"token": TOKEN}).status_code == 303
        assert client.post(f"/api/tasks/{tid}/cancel").status_code == 403
        assert ctl.status(tid) == runq.TaskStatus.PENDING
        csrf = _csrf(client)
        answer = client.post(f"/api/tasks/{tid}/cancel", headers={"X-CSRF-Token": csrf})
        assert answer.status_code == 200 and answer.json()["ok"]
    assert ctl.status(tid) == runq.TaskStatus.CANCELLED


def test_login_in_the_browser(
    ctl: runq.Controller, web: Callable[..., WebServer], page: WebDriver
) -> None:
    tid = ctl.enqueue(add, (1, 2))
    server = web(token=TOKEN)
    page.get(f"{server.url}/tasks/{tid}")
    assert "/login" in page.current_url
    page.find_element(By.ID, "token").send_keys("not-the-token")
    page.find_element(By.CSS_SELECTOR, "form button").click()
    until(lambda: page.find_elements(By.CSS_SELECTOR, ".bad"), _WAIT_S, "the refusal")
    page.find_element(By.ID, "token").send_keys(TOKEN)
    page.find_element(By.CSS_SELECTOR, "form button").click()
    until(lambda: page.current_url.endswith(f"/tasks/{tid}"), _WAIT_S, "back to the task")
    assert tid in page.find_element(By.TAG_NAME, "h1").text
    assert TOKEN not in page.page_source
    cookie = page.get_cookie("runq_token")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"


def test_actions_need_the_csrf_token(ctl: runq.Controller, web: Callable[..., WebServer]) -> None:
    tid = ctl.enqueue(add, (1, 2))
    ctl.schedules.add("nightly", add, args=(1, 2), cron="0 3 * * *")
    ctl.limits.set("api", rate="100/m", concurrency=5)
    server = web()
    with server.client() as client:
        csrf = _csrf(client)
        assert client.get(f"/tasks/{tid}/cancel").status_code == 405  # never a GET
        for data, headers in (
            ({}, {}),
            ({"csrf": "forged"}, {}),
            ({"csrf": csrf}, {"Origin": "http://evil.example"}),
            ({"csrf": csrf}, {"Origin": "null"}),
        ):
            answer = client.post(f"/tasks/{tid}/cancel", data=data, headers=headers)
            assert answer.status_code == 403, (data, headers)
        assert client.post(f"/api/tasks/{tid}/delete").status_code == 403
        assert ctl.status(tid) == runq.TaskStatus.PENDING
        answer = client.post(f"/tasks/{tid}/cancel", data={"csrf": csrf})
        assert answer.status_code == 303
    assert ctl.status(tid) == runq.TaskStatus.CANCELLED
    # the schedules and limits pages, and pausing a schedule (a POST like the others)
    with server.client() as client:
        csrf = _csrf(client)
        assert "nightly" in client.get("/schedules").text
        assert "100/m" in client.get("/limits").text
        (schedule,) = client.get("/api/schedules").json()["schedules"]
        assert schedule["name"] == "nightly" and schedule["cron"] == "0 3 * * *"
        assert not schedule["paused"]
        limits = client.get("/api/limits").json()["limits"]
        assert limits == [{"name": "api", "rate": "100/m", "concurrency": 5}]
        assert client.post("/schedules/nightly/pause", data={}).status_code == 403
        assert not ctl.schedules.get("nightly").paused
        assert client.post("/schedules/nightly/pause", data={"csrf": csrf}).status_code == 303
        assert ctl.schedules.get("nightly").paused
        answer = client.post("/api/schedules/nightly/resume", headers={"X-CSRF-Token": csrf})
        assert answer.json()["ok"] and not ctl.schedules.get("nightly").paused


def test_json_api(
    ctl: runq.Controller,
    spawn: Callable[..., runq.WorkerManager],
    web: Callable[..., WebServer],
) -> None:
    workers = spawn(1)
    ids = [ctl.enqueue(add, (i, i), name="even" if i % 2 == 0 else None) for i in range(7)]
    bad = ctl.enqueue(fail, ("api failure",))
    ctl.wait([*ids, bad], timeout=_WAIT_S)
    server = web()
    with server.client() as client:
        csrf = _csrf(client)
        page = client.get("/api/tasks", params={"limit": 3}).json()
        assert [t["id"] for t in page["tasks"]] == [bad, ids[6], ids[5]]
        rest = client.get("/api/tasks", params={"after": page["after"], "limit": 10}).json()
        assert [t["id"] for t in rest["tasks"]] == ids[4::-1] and rest["after"] is None
        even = client.get("/api/tasks", params={"name": "even"}).json()["tasks"]
        assert [t["id"] for t in even] == ids[6::-2]
        errors = client.get("/api/tasks", params={"status": "ERROR"}).json()["tasks"]
        assert [t["id"] for t in errors] == [bad]
        assert client.get("/api/tasks", params={"status": "NOPE"}).status_code == 400
        assert client.get("/api/tasks", params={"limit": 0}).status_code == 400
        one = client.get(f"/api/tasks/{bad}").json()
        assert one["status"] == "ERROR" and one["error"]["message"] == "api failure"
        assert client.get(f"/api/tasks/{'0' * 32}").status_code == 404
        (worker,) = client.get("/api/workers").json()["workers"]
        assert worker["id"] == workers.ids[0] and worker["status"] in ("IDLE", "BUSY")
        assert client.get("/api/queues").json()["queues"] == [{"name": "default", "waiting": 0}]
        retried = client.post(f"/api/tasks/{bad}/retry", headers={"X-CSRF-Token": csrf}).json()
        assert retried["ok"] and ctl.status(bad, follow=False) == runq.TaskStatus.MOVED
        pong = client.post(
            f"/api/workers/{workers.ids[0]}/PING", headers={"X-CSRF-Token": csrf}
        ).json()
        assert pong == {
            "ok": True,
            "message": f"{workers.ids[0]} answered PONG",
            "response": "PONG",
        }


def test_metrics(
    ctl: runq.Controller,
    spawn: Callable[..., runq.WorkerManager],
    web: Callable[..., WebServer],
) -> None:
    spawn(1)
    done = [ctl.enqueue(add, (i, i)) for i in range(3)]
    bad = ctl.enqueue(fail)
    ctl.wait([*done, bad], timeout=_WAIT_S)
    waiting = ctl.enqueue(add, (1, 1), queue="nobody-listens")
    server = web()
    ns = ctl.queue_id
    with server.client() as client:

        def scraped() -> str | None:
            text = client.get("/metrics").text
            return text if "runq_task_duration_seconds_count" in text else None

        text = until(scraped, _WAIT_S, "durations observed")
    assert f'runq_tasks{{namespace="{ns}",status="COMPLETE"}} 3.0' in text
    assert f'runq_tasks{{namespace="{ns}",status="ERROR"}} 1.0' in text
    assert f'runq_tasks{{namespace="{ns}",status="PENDING"}} 1.0' in text
    assert f'runq_queue_depth{{namespace="{ns}",queue="nobody-listens"}} 1.0' in text
    assert f'runq_workers{{namespace="{ns}",status="IDLE"}} 1.0' in text
    assert "# TYPE runq_task_duration_seconds histogram" in text
    assert f'runq_task_duration_seconds_count{{namespace="{ns}",status="COMPLETE"}} 3.0' in text
    assert f'runq_task_duration_seconds_count{{namespace="{ns}",status="ERROR"}} 1.0' in text
    assert waiting  # still PENDING: nobody listens to its queue
