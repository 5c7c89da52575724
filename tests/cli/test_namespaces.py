"""Which namespaces exist (``runq.namespaces``), and opening one without creating it
(``Controller(create=False)`` / ``connect(create=False)``), on both backends."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

import runq
import taskfns
from runq.backends import connect


def test_namespaces_lists_the_created_ones_sorted(backend_url: str, namespace: str) -> None:
    names = [f"{namespace}-b", f"{namespace}-a", f"{namespace}.c"]
    ctls = [runq.Controller(name, backend_url) for name in names]
    try:
        found = [n for n in runq.namespaces(backend_url) if n.startswith(namespace)]
        assert found == sorted(names)
        assert runq.namespaces(backend_url) == sorted(runq.namespaces(backend_url))
        ctls[0].destroy()
        found = [n for n in runq.namespaces(backend_url) if n.startswith(namespace)]
        assert found == sorted(names[1:])
    finally:
        for ctl in ctls:
            ctl.destroy()
            ctl.close()


def test_open_without_create_writes_nothing_and_names_the_existing(
    backend_url: str, namespace: str
) -> None:
    existing = runq.Controller(f"0{namespace}", backend_url)  # sorts before other test names
    try:
        before = runq.namespaces(backend_url)
        with pytest.raises(runq.UnknownNamespaceError) as caught:
            runq.Controller(namespace, backend_url, create=False)
        with pytest.raises(runq.UnknownNamespaceError):
            connect(backend_url, namespace, create=False)
        assert runq.namespaces(backend_url) == before
        assert namespace not in before
        err = caught.value
        assert isinstance(err, runq.ConfigError)
        assert (err.namespace, err.address) == (namespace, existing.address)
        assert f"0{namespace}" in err.existing
        text = str(err)
        assert f"namespace {namespace!r} does not exist at {existing.address}" in text
        assert f"0{namespace}" in text
        again = pickle.loads(pickle.dumps(err))
        assert str(again) == text and again.existing == err.existing
    finally:
        existing.destroy()
        existing.close()


def test_open_without_create_works_on_an_existing_namespace(ctl: runq.Controller) -> None:
    tid = ctl.enqueue(taskfns.add, (1, 2))
    with runq.Controller(ctl.queue_id, ctl.url, create=False) as reader:
        assert reader.status(tid) == runq.TaskStatus.PENDING
        assert reader.list_tasks() == [tid]


def test_a_destroyed_namespace_is_unknown_again(backend_url: str, namespace: str) -> None:
    with runq.Controller(namespace, backend_url) as ctl:
        ctl.enqueue(taskfns.add, (1, 2))
        ctl.destroy()
    assert namespace not in runq.namespaces(backend_url)
    with pytest.raises(runq.UnknownNamespaceError, match=namespace):
        runq.Controller(namespace, backend_url, create=False)


def test_sqlite_without_create_never_creates_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "none.db"
    url = f"sqlite:///{path}"
    assert runq.namespaces(url) == []
    with pytest.raises(runq.UnknownNamespaceError, match="there are no namespaces there"):
        runq.Controller("q", url, create=False)
    assert not path.parent.exists()


def test_namespaces_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(runq.ConfigError, match="unsupported backend URL scheme 'ftp'"):
        runq.namespaces("ftp://example")
    with pytest.raises(runq.ConfigError, match="password= is for Redis"):
        runq.namespaces(f"sqlite:///{tmp_path / 'x.db'}", password="pw")
