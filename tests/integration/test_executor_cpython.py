"""CPython's own generic ``concurrent.futures`` tests, run against ``runq.Executor``.

The tests come from ``test.test_concurrent_futures`` of the running Python when it ships its
``test`` package, else from Debian's ``libpython3.11-testsuite`` (the system Python's library
directory); without either the module is skipped, saying so.

Run: the mixins that are not specific to thread or process pools — ``ExecutorTest``,
``WaitTests``, ``AsCompletedTests``, ``ExecutorShutdownTest`` (see ``SKIPPED``),
``InitializerMixin``, ``FailingInitializerMixin`` and ``FutureTests`` — with
``executor_type`` making a ``runq.Executor`` on one namespace served by 5 worker processes
(the mixins' ``worker_count``). They run on the SQLite backend only: these
tests check the executor's ``concurrent.futures`` contract, which sits above the backend seam
(the same code drives both backends, and ``test_executor.py`` runs the executor on both), and
unittest classes cannot take the parametrized ``backend_url`` fixture.
The test module's own functions (``mul``, ``capture``, …) are not importable by the worker
processes, so that module is registered with cloudpickle to travel by value.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import sys
import sysconfig
import unittest
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import cloudpickle
import pytest

import runq

_NAME = "test.test_concurrent_futures"


def _load() -> ModuleType | None:
    try:
        return importlib.import_module(_NAME)
    except ImportError:
        pass
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [
        Path(sysconfig.get_paths()["stdlib"]) / "test" / "test_concurrent_futures.py",
        Path(f"/usr/lib/python{version}/test/test_concurrent_futures.py"),
    ]
    for path in candidates:
        if path.is_file():
            spec = importlib.util.spec_from_file_location(_NAME, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[_NAME] = module
            try:
                spec.loader.exec_module(module)
            except (ImportError, unittest.SkipTest):
                del sys.modules[_NAME]
                return None
            return module
    return None


cf = _load()
if cf is None:
    pytest.skip(
        "CPython's test.test_concurrent_futures is not available (install Debian's "
        "libpython3.11-testsuite)",
        allow_module_level=True,
    )
assert cf is not None

#: Tests of the generic mixins that cannot apply to runq.Executor, and why.
SKIPPED = {
    "test_interpreter_shutdown": "runs `from concurrent.futures import <executor_type>` in a "
    "child interpreter: only the stdlib's own executors can be named there",
    "test_submit_after_interpreter_shutdown": "same: a child interpreter importing the "
    "executor class from concurrent.futures",
    "test_hang_gh83386": "same: a child interpreter importing the executor class from "
    "concurrent.futures",
}

_STATE: dict[str, Any] = {}


@pytest.fixture(scope="module", autouse=True)
def runq_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One SQLite namespace with 5 workers for every test of the module."""
    assert cf is not None
    url = f"sqlite:///{tmp_path_factory.mktemp('cpython-executor') / 'runq.db'}"
    ctl = runq.Controller("cf" + uuid.uuid4().hex[:8], url)
    cloudpickle.register_pickle_by_value(cf)
    manager = ctl.workers.spawn(5, progress=False, timeout=60)
    _STATE["ctl"] = ctl
    try:
        yield
    finally:
        manager.stop(timeout=30)
        cloudpickle.unregister_pickle_by_value(cf)
        ctl.backend.destroy()
        ctl.close()
        _STATE.clear()


def _make_executor(max_workers: int | None = None, **kwargs: Any) -> runq.Executor:
    return runq.Executor(_STATE["ctl"], max_workers=max_workers, **kwargs)


class RunqMixin(cf.ExecutorMixin):  # type: ignore[misc,name-defined]
    executor_type = staticmethod(_make_executor)
    worker_count = 5

    def setUp(self) -> None:
        reason = SKIPPED.get(self._testMethodName)
        if reason:
            raise unittest.SkipTest(reason)
        super().setUp()


class RunqExecutorTest(RunqMixin, cf.ExecutorTest, cf.BaseTestCase):  # type: ignore[misc,name-defined]
    pass


class RunqWaitTests(RunqMixin, cf.WaitTests, cf.BaseTestCase):  # type: ignore[misc,name-defined]
    pass


class RunqAsCompletedTests(RunqMixin, cf.AsCompletedTests, cf.BaseTestCase):  # type: ignore[misc,name-defined]
    pass


class RunqShutdownTest(RunqMixin, cf.ExecutorShutdownTest, cf.BaseTestCase):  # type: ignore[misc,name-defined]
    pass


class RunqInitializerTest(RunqMixin, cf.InitializerMixin, cf.BaseTestCase):  # type: ignore[misc,name-defined]
    pass


class RunqFailingInitializerTest(RunqMixin, cf.FailingInitializerMixin, cf.BaseTestCase):  # type: ignore[misc,name-defined]
    @contextlib.contextmanager
    def _assert_logged(self, msg: str) -> Iterator[None]:
        # The initializer fails in a worker process; the executor reports it on its own
        # logger when it breaks (the stdlib's thread pool logs it on "concurrent.futures" at
        # CRITICAL, its process pool in the child), so the same words are checked there.
        with self.assertLogs("runq.executor", "ERROR") as cm:
            yield
        self.assertTrue(any(msg in line for line in cm.output), cm.output)


class RunqFutureTests(cf.FutureTests):  # type: ignore[misc,name-defined]
    def setUp(self) -> None:
        # test_done_callback_raises reads the callback error from stderr, where logging's
        # last-resort handler writes it when the record reaches no handler; pytest's log
        # capture on the root logger would take it first, so keep it from propagating.
        futures_log = logging.getLogger("concurrent.futures")
        futures_log.propagate = False
        self.addCleanup(setattr, futures_log, "propagate", True)
        super().setUp()
