"""Screenshots of the web dashboard for the README and the docs (docs/images/web-*.png).

    .venv/bin/python scripts/web_screenshots.py [--out docs/images]

Builds a small namespace in a temporary SQLite file (two workers, a few hundred tasks run over
half a minute, some failing, a schedule and a limit), serves it with ``runq web`` on a free
loopback port and photographs the main pages in headless Chromium at laptop (1280 px) and
phone (390 px) widths. Every process it starts is stopped by its pid.
"""

from __future__ import annotations

import argparse
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

import runq


def work(seconds: float, fail: bool = False) -> float:
    """A task that takes ``seconds``, and fails if told to."""
    print(f"working for {seconds:.2f} s")
    time.sleep(seconds)
    if fail:
        raise ValueError(f"the input was not valid after {seconds:.2f} s")
    return seconds


def resize(path: str, width: int = 800) -> str:
    """A named task for the screenshots."""
    time.sleep(random.uniform(0.05, 0.3))
    return f"{path} -> {width}px"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        f"--user-data-dir={tempfile.mkdtemp(prefix='runq-shots-')}", "--hide-scrollbars",
    ):  # fmt: skip
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def main() -> None:
    parser = argparse.ArgumentParser()
    root = Path(__file__).resolve().parent.parent
    parser.add_argument("--out", default=str(root / "docs" / "images"))
    out = Path(parser.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="runq-shots-"))
    url = f"sqlite:///{tmp}/runq.db"
    ctl = runq.Controller("shop", url)
    ctl.limits.set("thumbnails", rate="600/m", concurrency=4)
    ctl.schedules.add("nightly-report", work, args=(0.5,), cron="0 3 * * *")
    ctl.schedules.add("sync-prices", work, args=(0.1,), every=300)
    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "runq", "web", "shop", "--url", url, "--port", str(port)]
    )
    base = f"http://127.0.0.1:{port}"
    config = runq.WorkerConfig(queues=("default", "reports"), logdir=str(tmp / "task-logs"))
    managers = ctl.workers.spawn(3, logdir=tmp / "logs", config=config, progress=False)
    driver = browser()
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/login", timeout=2)
                break
            except OSError:
                time.sleep(0.1)
        rng = random.Random(7)
        failed = None
        for second in range(30):
            for _ in range(rng.randint(3, 9)):
                if rng.random() < 0.5:
                    ctl.enqueue(resize, (f"img/{rng.randint(1000, 9999)}.png",), name="resize")
                else:
                    tid = ctl.enqueue(work, (rng.uniform(0.02, 0.4), rng.random() < 0.08))
                    failed = failed or (tid if second == 3 else None)
            time.sleep(1)
        ctl.enqueue(work, (120,), name="long-export")
        ctl.enqueue(work, (0.1,), queue="reports")
        errors = ctl.task_page(status="ERROR", limit=1).tasks
        error_id = errors[0].id if errors else failed
        time.sleep(4)
        shots = [
            ("overview", "/", 1280, 1000),
            ("tasks", "/tasks", 1280, 1000),
            ("task", f"/tasks/{error_id}", 1280, 1000),
            ("workers", "/workers", 1280, 800),
            ("schedules", "/schedules", 1280, 500),
            ("overview-phone", "/", 390, 844),
            ("tasks-phone", "/tasks", 390, 844),
            ("task-phone", f"/tasks/{error_id}", 390, 844),
        ]
        for name, path, width, height in shots:
            driver.set_window_size(width, height)
            driver.get(base + path)
            time.sleep(2.5)  # the first live update (charts, counts)
            driver.save_screenshot(str(out / f"web-{name}.png"))
            print("saved", out / f"web-{name}.png")
    finally:
        driver.quit()
        managers.stop(timeout=30)
        web.terminate()
        web.wait(timeout=30)
        ctl.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
