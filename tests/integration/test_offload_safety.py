"""Backend data never reaches the filesystem outside the offload directory (issue 9, item 10a).

A store hash names an offload file, and a backend (corrupt, or written by an attacker) can hold
any string as a hash. Here ``../victim.txt`` is written into the backend as an attacker with
write access would (through the backend's own primitives, past the contract's checks, which
refuse such a hash), next to an offload directory, with a file at
``<offload_path>/../victim.txt``: every way runq deletes offloaded values skips it (with a
logged warning) and reading it is a clear error, and the victim file is never touched."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

import runq
from helpers import until
from runq.models import Blob, NewTask

BAD = "../victim.txt"


@pytest.fixture
def offload(ctl: runq.Controller, tmp_path: Path) -> Path:
    """The namespace's offload directory (values above 100 bytes go there)."""
    directory = tmp_path / "offload"
    directory.mkdir()
    runq.configure(ctl.queue_id, ctl.url, store_max_size=100, offload_path=str(directory)).close()
    ctl.session.blobs.settings(refresh=True)
    return directory


@pytest.fixture
def victim(offload: Path) -> Path:
    """A file at ``<offload_path>/../victim.txt``."""
    path = offload.parent / "victim.txt"
    path.write_text("keep me")
    return path


def plant(ctl: runq.Controller, tag: str) -> None:
    """Record the bad hash as an offloaded value held by ``tag`` (the backend's primitive:
    the public verb refuses it)."""
    with pytest.raises(runq.ConfigError, match="not an object-store hash"):
        ctl.backend.store_put(tag, [Blob(BAD, None, 3)])
    ctl.backend._store_put(tag, [Blob(BAD, None, 3)])  # noqa: SLF001 - an attacker


def plant_task(ctl: runq.Controller) -> str:
    """A task whose (recorded) large argument is the bad hash."""
    tid = os.urandom(16).hex()
    task = NewTask(tid, "nobody", b"opaque", {}, (), (Blob(BAD, None, 3),))
    with pytest.raises(runq.ConfigError, match="not an object-store hash"):
        ctl.backend.enqueue([task])
    ctl.backend._enqueue([task])  # noqa: SLF001 - an attacker, past the checks
    return tid


def assert_skipped(victim: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert victim.read_text() == "keep me"
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(repr(BAD) in m and "not a hash" in m for m in warned), warned


def test_store_drop_skips_a_bad_hash(
    ctl: runq.Controller, victim: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = ctl.store.set(b"g" * 1000, "evil")
    plant(ctl, "evil")
    ctl.store.drop("evil")
    assert_skipped(victim, caplog)
    assert ctl.store.list() == []
    assert not (victim.parent / "offload" / good).exists()  # the good file went as usual


def test_delete_skips_a_bad_hash(
    ctl: runq.Controller, victim: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tid = plant_task(ctl)
    ctl.delete(tid)
    assert_skipped(victim, caplog)
    assert ctl.store.list() == [] and ctl.status(tid) is runq.TaskStatus.MISSING


@pytest.mark.parametrize("how", ["store.destroy", "destroy", "destroy(delete=1)"])
def test_destroy_skips_a_bad_hash(
    ctl: runq.Controller,
    offload: Path,
    victim: Path,
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    good = ctl.store.set(b"g" * 1000, "tag")
    plant(ctl, "tag")
    plant(ctl, "other")
    plant_task(ctl)
    if how == "store.destroy":
        ctl.store.destroy()
    elif how == "destroy":
        ctl.destroy()
    else:
        ctl.destroy(delete=1)
        until(lambda: not (offload / good).exists(), what="the offload file removed after 1 s")
    assert_skipped(victim, caplog)
    assert not (offload / good).exists()


def test_reading_a_bad_hash_is_a_clear_error_and_reads_nothing(
    ctl: runq.Controller, victim: Path
) -> None:
    from runq._blobs import BlobRef, Packed
    from runq._offload import open_offload, write_offload

    plant(ctl, "evil")
    for read in (
        lambda: ctl.session.blobs.fetch([BAD], "the result of task x"),
        lambda: ctl.session.blobs.unpack(Packed(BlobRef(BAD, 3), (BAD,)), "the result of task x"),
        lambda: open_offload(str(victim.parent / "offload"), BAD, "the result of task x"),
    ):
        with pytest.raises(runq.PayloadError, match=r"the result of task x.*'\.\./victim\.txt'"):
            read()
    with pytest.raises(runq.PayloadError, match="not a hash"):
        write_offload(str(victim.parent / "offload"), BAD, b"overwritten")
    with pytest.raises(runq.ConfigError, match="64 lowercase hex digits"):
        ctl.store.get(BAD)
    assert victim.read_text() == "keep me"
