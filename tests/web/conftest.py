"""Fixtures of the web dashboard tests: a ``runq web`` server on a free loopback port (a real
process, stopped by its pid), and one headless Chromium for the session (Selenium with
Debian's ``chromium`` and ``chromium-driver``, which ``scripts/test.sh`` installs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from helpers import TESTS_DIR, free_port, gone, until

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
_START_S = 60.0
_STOP_S = 15.0


@dataclass
class WebServer:
    """A running ``runq web``: its base URL, its process and its token (if any)."""

    url: str
    proc: subprocess.Popen[bytes]
    token: str | None

    def client(self, **kwargs: object) -> httpx.Client:
        """An HTTP client of the server (no redirects followed)."""
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)  # type: ignore[arg-type]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=_STOP_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=_STOP_S)
    assert gone(proc.pid)


@pytest.fixture
def web(backend_url: str, namespace: str, tmp_path: Path) -> Iterator[Callable[..., WebServer]]:
    """Start ``runq web`` on the test's namespace (which must exist: the test's ``ctl``
    creates it); ``token=`` writes a token file and passes ``--token-file``."""
    started: list[subprocess.Popen[bytes]] = []

    def start(token: str | None = None) -> WebServer:
        port = free_port()
        args = [sys.executable, "-m", "runq", "web", namespace, "--url", backend_url]
        args += ["--port", str(port)]
        if token is not None:
            token_file = tmp_path / "token"
            token_file.write_text(token + "\n")
            args += ["--token-file", str(token_file)]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(TESTS_DIR), env.get("PYTHONPATH", "")])
        env.pop("RUNQ_SECRET", None)
        with (tmp_path / f"web-{port}.log").open("wb") as log:
            proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        started.append(proc)
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            assert proc.poll() is None, (tmp_path / f"web-{port}.log").read_text()
            try:
                return httpx.get(url + "/login", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        until(answers, _START_S, "runq web answering")
        return WebServer(url, proc, token)

    yield start
    for proc in started:
        _stop(proc)


@pytest.fixture(scope="session")
def browser() -> Iterator[webdriver.Chrome]:
    """One headless Chromium for the whole session."""
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("chromium and chromium-driver are not installed (scripts/test.sh does it)")
    profile = tempfile.mkdtemp(prefix="runq-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser: webdriver.Chrome) -> Iterator[webdriver.Chrome]:
    """The session's browser, with no cookie left from an earlier test."""
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    yield browser
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
