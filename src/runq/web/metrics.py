"""``/metrics``: the namespace in Prometheus' text format (``prometheus_client``).

Read fresh at each scrape through the public API:

- ``runq_tasks{status}``: tasks in each status (every status, 0 included);
- ``runq_queue_depth{queue}``: tasks waiting in each queue;
- ``runq_workers{status}``: active workers in each status;
- ``runq_task_duration_seconds{status}``: a histogram of how long finished tasks ran, observed
  by the dashboard's sampler (``sampler.Sampler``) since it started;
- ``runq_scrape_duration_seconds``: how long this scrape's reads took.

Every metric carries the label ``namespace``, so several dashboards can share a Prometheus.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from runq import Controller, TaskStatus, WorkerStatus

__all__ = ["NamespaceCollector", "registry_for"]

_ACTIVE_WORKERS = (WorkerStatus.IDLE, WorkerStatus.BUSY, WorkerStatus.PAUSED)


class NamespaceCollector(Collector):
    """The gauges of one namespace, read at each scrape."""

    def __init__(self, ctl: Controller) -> None:
        self._ctl = ctl

    def collect(self) -> Iterator[Metric]:
        began = time.perf_counter()
        ns = self._ctl.queue_id
        counts = self._ctl.overview()
        tasks = GaugeMetricFamily(
            "runq_tasks", "Tasks in each status.", labels=["namespace", "status"]
        )
        for status in TaskStatus:
            if status is not TaskStatus.MISSING:
                tasks.add_metric([ns, str(status)], counts.get(status, 0))
        yield tasks
        depth = GaugeMetricFamily(
            "runq_queue_depth", "Tasks waiting in each queue.", labels=["namespace", "queue"]
        )
        for queue, waiting in sorted(self._ctl.queues.lengths().items()):
            depth.add_metric([ns, queue], waiting)
        yield depth
        workers = GaugeMetricFamily(
            "runq_workers", "Active workers in each status.", labels=["namespace", "status"]
        )
        by_status = list(self._ctl.workers.status().values())
        for wstatus in _ACTIVE_WORKERS:
            workers.add_metric([ns, str(wstatus)], by_status.count(wstatus))
        yield workers
        yield GaugeMetricFamily(
            "runq_scrape_duration_seconds",
            "Seconds the reads of this scrape took.",
            value=time.perf_counter() - began,
        )


def registry_for(ctl: Controller) -> CollectorRegistry:
    """A registry holding the namespace's collector (the sampler adds its histogram)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NamespaceCollector(ctl))
    return registry
