"""Shared fixtures: one real ``redis-server`` per session, a fresh namespace per test, and the
``backend_url`` fixture parametrized over both backends that every behavioural test takes."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import runq
from helpers import RedisClusterServers, RedisServer, url_of
from runq.backends import Backend, connect


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    """A real Redis Cluster of three masters, started only when a cluster test runs."""
    cluster = RedisClusterServers(tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def namespace() -> str:
    """A fresh namespace (queue id) per test."""
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture(params=["sqlite", "redis", "cluster"])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a real backend: an SQLite file in the test's temp dir, or the session's
    real redis-server; for the modules of ``ON_CLUSTER`` also the session's Redis Cluster
    (the ``cluster`` variants of every other module are deselected). Every behavioural test
    takes this fixture."""
    return url_of(request, tmp_path)


#: The modules whose ``backend_url`` tests also run on a Redis Cluster: the suites of the
#: backend verbs themselves, and the basics end to end (submitting, real workers). The
#: property-based and stateful suites hold the backends to the same answers (the cluster runs
#: the same scripts: a second Redis adds time, not coverage), the fault suites stop and start
#: one server, and the other end-to-end suites run the same verbs.
ON_CLUSTER = frozenset(
    {
        "test_backend_contract",
        "test_backend_dedup_contract",
        "test_backend_ops_contract",
        "test_backend_wake_contract",
        "test_backend_large_batch",
        "test_store_contract",
        "test_backend_time_contract",
        "test_backend_schedules_contract",
        "test_backend_expiry_contract",
        "test_cluster",
        "test_submit",
        "test_worker",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the ``cluster`` variants of the modules not in ``ON_CLUSTER``."""
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_cluster = callspec is not None and callspec.params.get("backend_url") == "cluster"
        module = item.path.stem
        (dropped if on_cluster and module not in ON_CLUSTER else keep).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture
def ctl(backend_url: str, namespace: str) -> Iterator[runq.Controller]:
    """A controller on a fresh namespace of the parametrized backend."""
    controller = runq.Controller(namespace, backend_url)
    yield controller
    controller.backend.destroy()
    controller.close()


@pytest.fixture
def spawn(ctl: runq.Controller, tmp_path: Path) -> Iterator[Callable[..., runq.WorkerManager]]:
    """Start worker processes for ``ctl``; every one is stopped (by pid) after the test."""
    managers: list[runq.WorkerManager] = []

    def start(n: int = 1, **kwargs: object) -> runq.WorkerManager:
        kwargs.setdefault("logdir", tmp_path / "worker-logs")
        kwargs.setdefault("timeout", 60)
        kwargs.setdefault("progress", False)
        manager = ctl.workers.spawn(n, **kwargs)  # type: ignore[arg-type]
        managers.append(manager)
        return manager

    yield start
    for manager in managers:
        manager.stop(timeout=15)


@pytest.fixture
def workers(spawn: Callable[..., runq.WorkerManager]) -> runq.WorkerManager:
    """Two running workers on the default config."""
    return spawn(2)


@pytest.fixture
def backend(backend_url: str, namespace: str) -> Iterator[Backend]:
    """The backend under test (through the protocol only), on a fresh namespace; destroyed
    and closed afterwards. Every backend contract suite takes it."""
    b = connect(backend_url, namespace)
    yield b
    b.destroy()
    b.close()


@pytest.fixture
def other(backend: Backend, backend_url: str, namespace: str) -> Iterator[Backend]:
    """A second object on the same namespace, as another process (a worker) would open it."""
    b = connect(backend_url, namespace)
    yield b
    b.close()
