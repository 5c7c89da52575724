"""``/metrics``: the namespace in Prometheus' text format (``prometheus_client``).

- ``runq_tasks{status}``: tasks in each status (every status, 0 included);
- ``runq_queue_depth{queue}``: tasks waiting in each queue;
- ``runq_workers{status}``: active workers in each status;
- ``runq_task_duration_seconds{status}``: a histogram of how long finished tasks ran, observed
  by the dashboard's sampler (``sampler.Sampler``) since it started;
- ``runq_sample_age_seconds``: how old the counts above are;
- ``runq_scrape_duration_seconds``: how long this scrape took to gather them.

The counts come from the sampler's latest read of the namespace (a few seconds old at most:
it samples at least every 2 s, or five times the cost of a read on a very large namespace), so
a scrape costs nothing however many tasks there are and however often Prometheus asks; before
the first sample they are read at once. Every metric carries the label ``namespace``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from runq import Controller, TaskStatus, WorkerStatus

__all__ = ["NamespaceCollector"]

_ACTIVE_WORKERS = (WorkerStatus.IDLE, WorkerStatus.BUSY, WorkerStatus.PAUSED)


class NamespaceCollector(Collector):
    """The gauges of one namespace, from ``latest()`` (the sampler's last sample)."""

    def __init__(self, ctl: Controller, latest: Callable[[], dict[str, Any]]) -> None:
        self._ctl = ctl
        self._latest = latest

    def _sample(self) -> tuple[dict[str, Any], float]:
        sample = self._latest()
        if sample.get("time") is None:  # no sample yet: read now
            workers: dict[str, int] = {}
            for status in self._ctl.workers.status().values():
                workers[str(status)] = workers.get(str(status), 0) + 1
            sample = {
                "counts": {str(k): v for k, v in self._ctl.overview().items()},
                "queues": self._ctl.queues.lengths(),
                "workers": workers,
                "time": time.time(),
            }
        return sample, max(0.0, time.time() - sample["time"])

    def collect(self) -> Iterator[Metric]:
        began = time.perf_counter()
        ns = self._ctl.queue_id
        sample, age = self._sample()
        tasks = GaugeMetricFamily(
            "runq_tasks", "Tasks in each status.", labels=["namespace", "status"]
        )
        for status in TaskStatus:
            if status is not TaskStatus.MISSING:
                tasks.add_metric([ns, str(status)], sample["counts"].get(str(status), 0))
        yield tasks
        depth = GaugeMetricFamily(
            "runq_queue_depth", "Tasks waiting in each queue.", labels=["namespace", "queue"]
        )
        for queue, waiting in sorted(sample["queues"].items()):
            depth.add_metric([ns, queue], waiting)
        yield depth
        workers = GaugeMetricFamily(
            "runq_workers", "Active workers in each status.", labels=["namespace", "status"]
        )
        for wstatus in _ACTIVE_WORKERS:
            workers.add_metric([ns, str(wstatus)], sample["workers"].get(str(wstatus), 0))
        yield workers
        sample_age = GaugeMetricFamily(
            "runq_sample_age_seconds",
            "Seconds since the counts were read from the backend.",
            labels=["namespace"],
        )
        sample_age.add_metric([ns], age)
        yield sample_age
        yield GaugeMetricFamily(
            "runq_scrape_duration_seconds",
            "Seconds this scrape took to gather the metrics.",
            value=time.perf_counter() - began,
        )
