"""``runq schedule add|list|remove|pause|resume`` (issue 11), run as a subprocess, on both
backends."""

from __future__ import annotations

import runq
from helpers import run_cli


def test_schedule_commands(ctl: runq.Controller, backend_url: str) -> None:
    ns = ctl.queue_id
    out = run_cli(
        "schedule", "add", ns, "sum", "operator:add", "1", "2", "--every", "60", url=backend_url
    )
    assert out.returncode == 0, out.stderr
    assert "sum\t_operator.add\tevery 60 s" in out.stdout
    out = run_cli(
        "schedule",
        "add",
        ns,
        "nightly",
        "operator:add",
        "1",
        "2",
        "--cron",
        "0 3 * * *",
        "--timezone",
        "Europe/Berlin",
        url=backend_url,
    )
    assert out.returncode == 0, out.stderr
    sched = ctl.schedules.list()
    assert list(sched) == ["nightly", "sum"]
    assert sched["sum"].every == 60 and sched["nightly"].timezone == "Europe/Berlin"
    assert run_cli("schedule", "pause", ns, "sum", url=backend_url).returncode == 0
    assert ctl.schedules.list()["sum"].paused
    out = run_cli("schedule", "list", ns, url=backend_url)
    assert out.returncode == 0 and "paused" in out.stdout and "cron '0 3 * * *'" in out.stdout
    assert run_cli("schedule", "resume", ns, "sum", url=backend_url).returncode == 0
    assert not ctl.schedules.list()["sum"].paused
    assert run_cli("schedule", "remove", ns, "sum", url=backend_url).returncode == 0
    assert list(ctl.schedules.list()) == ["nightly"]


def test_schedule_mistakes_are_one_line(ctl: runq.Controller, backend_url: str) -> None:
    ns = ctl.queue_id
    for args in (
        ("remove", ns, "nope"),
        ("add", ns, "x", "operator:nope", "--every", "5"),
        ("add", ns, "x", "operator:add", "1", "2"),
        ("add", ns, "x", "operator:add", "--cron", "99 * * * *"),
        ("add", ns, "x", "operator:add", "--every", "5", "--kwargs", "{bad"),
    ):
        out = run_cli("schedule", *args, url=backend_url)
        assert out.returncode == 1, args
        assert out.stderr.startswith("runq: error:") and "Traceback" not in out.stderr, args
    assert ctl.schedules.list() == {}
    out = run_cli("schedule", "list", "tnonexistent00", url=backend_url)
    assert out.returncode == 1 and "does not exist" in out.stderr
