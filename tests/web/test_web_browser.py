"""The dashboard in a real browser (headless Chromium through Selenium), on both backends:
clicking through the pages, cancelling a running task and seeing it CANCELLED without a
reload, paging through 100,000 tasks, and what a task's text can (not) do to the page."""

from __future__ import annotations

from collections.abc import Callable

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

import runq
from helpers import until
from taskfns import add, fail, sleep_for
from web.conftest import WebServer

_WAIT_S = 60.0


def _text(page: WebDriver, css: str) -> str:
    """The text of the first element ``css`` selects ("" if there is none yet)."""
    try:
        found = page.find_elements(By.CSS_SELECTOR, css)
        return str(found[0].text) if found else ""
    except StaleElementReferenceException:  # the live updates replaced it meanwhile
        return ""


def _stale(element: WebElement) -> bool:
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    return False


def _follow(page: WebDriver, by: str, what: str) -> None:
    """Click the element found by (``by``, ``what``) and wait for the page it leads to."""
    old = page.find_element(By.TAG_NAME, "html")
    page.find_element(by, what).click()
    until(lambda: _stale(old), _WAIT_S, f"leaving the page by {what}")
    until(
        lambda: page.execute_script("return document.readyState") == "complete",
        _WAIT_S,
        "the page loaded",
    )


def _ids_on_page(page: WebDriver) -> list[str]:
    return [
        str(row.get_attribute("data-task-id"))
        for row in page.find_elements(By.CSS_SELECTOR, "tr[data-task-id]")
    ]


def test_click_through_the_pages(
    ctl: runq.Controller,
    spawn: Callable[..., runq.WorkerManager],
    web: Callable[..., WebServer],
    page: WebDriver,
) -> None:
    workers = spawn(1)
    done = ctl.enqueue(add, (1, 2), name="adder")
    failed = ctl.enqueue(fail, ("it broke",))
    ctl.wait([done, failed], timeout=_WAIT_S)
    server = web()
    page.get(server.url + "/")
    assert _text(page, "h1") == "Overview"
    until(lambda: _text(page, '[data-count="COMPLETE"]') == "1", _WAIT_S, "live counts")
    _follow(page, By.LINK_TEXT, "Queues")
    assert _text(page, "h1") == "Queues" and "default" in _text(page, "table")
    _follow(page, By.LINK_TEXT, "Tasks")
    assert _ids_on_page(page) == [failed, done]
    _follow(page, By.LINK_TEXT, failed)
    assert _text(page, f'[data-status-of="{failed}"]') == "ERROR"
    assert "it broke" in _text(page, ".error") and "Traceback" in _text(page, ".traceback")
    _follow(page, By.LINK_TEXT, "Tasks")
    page.find_element(By.NAME, "name").send_keys("adder")
    _follow(page, By.CSS_SELECTOR, ".filters button")
    assert _ids_on_page(page) == [done]
    page.find_element(By.NAME, "id").send_keys(done)
    _follow(page, By.CSS_SELECTOR, ".lookup button")
    assert done in _text(page, "h1") and "add" in _text(page, "dl")
    _follow(page, By.LINK_TEXT, "Workers")
    (wid,) = workers.ids
    assert _text(page, f'[data-worker-status="{wid}"]') in ("IDLE", "BUSY")
    page.find_element(By.XPATH, f'//form[contains(@action, "/workers/{wid}/PING")]/button').click()
    until(lambda: "PONG" in _text(page, ".flash"), _WAIT_S, "the PING answer")


def test_cancel_a_running_task_and_see_it_cancelled_without_reload(
    ctl: runq.Controller,
    spawn: Callable[..., runq.WorkerManager],
    web: Callable[..., WebServer],
    page: WebDriver,
) -> None:
    spawn(1)
    tid = ctl.enqueue(sleep_for, (300,))
    until(lambda: ctl.status(tid) == runq.TaskStatus.RUNNING, _WAIT_S, "the task running")
    server = web()
    page.get(f"{server.url}/tasks/{tid}")
    badge = f'[data-status-of="{tid}"]'
    assert _text(page, badge) == "RUNNING"
    page.execute_script("window.__sameDocument = true;")  # gone if the page reloads
    page.find_element(By.ID, "action-cancel").click()
    until(lambda: _text(page, badge) == "CANCELLED", _WAIT_S, "CANCELLED shown live")
    assert page.execute_script("return window.__sameDocument === true;")
    assert ctl.status(tid) == runq.TaskStatus.CANCELLED


def test_pages_through_100_000_tasks_and_follows_changes_live(
    ctl: runq.Controller, web: Callable[..., WebServer], page: WebDriver
) -> None:
    ids = ctl.enqueue_bulk(add, range(100_000))
    named = ctl.enqueue(add, (1, 2), name="needle")
    newest_first = list(reversed(ids))
    server = web()
    page.get(server.url + "/tasks")
    assert _ids_on_page(page) == [named, *newest_first[:49]]
    seen = [named, *newest_first[:49]]
    for _ in range(3):
        _follow(page, By.ID, "next-page")
        shown = _ids_on_page(page)
        assert shown == newest_first[len(seen) - 1 : len(seen) - 1 + 50]
        seen += shown
    assert len(set(seen)) == len(seen) == 200
    _follow(page, By.LINK_TEXT, "« Newest")
    assert _ids_on_page(page)[0] == named
    page.get(server.url + "/tasks?name=needle")
    assert _ids_on_page(page) == [named]
    # a change reaches the list without a reload
    page.execute_script("window.__sameDocument = true;")
    ctl.cancel(named)
    until(lambda: _text(page, f'[data-status-of="{named}"]') == "CANCELLED", _WAIT_S, "live")
    assert page.execute_script("return window.__sameDocument === true;")


def test_task_text_is_shown_not_run(
    ctl: runq.Controller,
    spawn: Callable[..., runq.WorkerManager],
    web: Callable[..., WebServer],
    page: WebDriver,
) -> None:
    spawn(1)
    evil = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>'
    tid = ctl.enqueue(fail, (evil,), name=evil)
    ctl.wait(tid, timeout=_WAIT_S)
    server = web()
    for path in (f"/tasks/{tid}", "/tasks", f"/tasks?name={evil}"):
        page.get(server.url + path)
        assert page.find_elements(By.CSS_SELECTOR, "main img, main script") == []
        assert evil[:20] in page.find_element(By.TAG_NAME, "main").text
        assert not page.execute_script("return window.__pwned === 1;")
