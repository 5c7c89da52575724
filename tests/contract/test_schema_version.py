"""A namespace written with another schema version is refused unless check_version=False."""

from __future__ import annotations

import sys

import pytest

import runq


def test_other_schema_version_is_refused(
    backend_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = runq.Controller(namespace, backend_url)
    tid = first.enqueue(print, ("hello",))
    backend_module = sys.modules[type(first.backend).__module__]
    first.close()
    # This process now speaks a newer schema than the one the namespace was written with.
    monkeypatch.setattr(backend_module, "SCHEMA_VERSION", 999)
    with pytest.raises(runq.SchemaVersionMismatch, match="999"):
        runq.Controller(namespace, backend_url)
    tolerant = runq.Controller(namespace, backend_url, check_version=False)
    assert tolerant.status(tid) == "PENDING"
    tolerant.backend.destroy()
    tolerant.close()
