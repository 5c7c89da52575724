"""Offload files: the bytes of large values as ``<offload_path>/<hash>``, and their removal.

Names: a file is named by its value's hash, and every name is checked to be a hash (64
lowercase hex digits) before any path is built from it. Hashes come from the backend, and a
backend holding ``../victim.txt`` (corrupt, or written by an attacker) must never make runq
read, write or delete anything outside the offload directory: reading such a name is a
``PayloadError``; deleting it is skipped with a logged warning.

Writing: to a temporary file in the same directory, then renamed, so readers never see half a
file. Reading: through ``mmap`` (no extra copy).

Removal later (``Controller.destroy(delete=N)``): the backend deletes the namespace N seconds
later by itself (Redis key expiry; SQLite on the next open), but no backend can delete files. So
the destroying controller writes a *purge marker* into ``<offload_path>/.runq-purge/`` (a JSON
file naming the namespace, the due time and the hashes of the namespace's offload files,
written atomically) and arms a daemon timer that removes those files when due. Every runq
process that later reads or writes offload files in that directory (any namespace) also
removes the files of the markers that are due: it reads the marker directory only when its
timestamp changed or a marker it saw falls due (one ``stat`` otherwise). Limit: if the
destroying process exits before the deadline and no runq process touches the directory after
it, the files stay until one does. A file written or reused after the marker (the same value
stored again by another namespace) is left in place.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import mmap
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from runq.exceptions import ConfigError, PayloadError

__all__ = [
    "check_hash_name",
    "is_hash",
    "offload_file",
    "open_offload",
    "purge_due",
    "remove_offload",
    "schedule_purge",
    "shown",
    "write_offload",
]

log = logging.getLogger("runq.store")

_HASH = re.compile(r"[0-9a-f]{64}")
_MARKERS = ".runq-purge"  # the directory of purge markers, inside the offload directory


def is_hash(name: object) -> bool:
    """Whether ``name`` is a store hash: 64 lowercase hex digits (BLAKE2b-256)."""
    return isinstance(name, str) and _HASH.fullmatch(name) is not None


def shown(name: object) -> str:
    """``name`` for a message: its repr, cut short."""
    text = repr(name)
    return text if len(text) <= 80 else text[:77] + "..."


def check_hash_name(name: object, what: str) -> str:
    """``name`` if it is a store hash, else a ``PayloadError`` (a name read from the backend
    or a payload: nothing is read, written or deleted under it)."""
    if isinstance(name, str) and _HASH.fullmatch(name):
        return name
    raise PayloadError(
        f"{what}: stored value name {shown(name)} is not a hash (64 lowercase hex digits); "
        "nothing was read (the backend or the payload is corrupt or tampered with)"
    )


def offload_file(offload_path: str, h: str, what: str = "a stored value") -> Path:
    """The file of hash ``h`` in ``offload_path`` (a ``PayloadError`` if ``h`` is no hash)."""
    return Path(offload_path) / check_hash_name(h, what)


def write_offload(offload_path: str, h: str, data: bytes) -> None:
    """Write ``<offload_path>/<h>`` atomically (temporary file, then rename)."""
    purge_due(offload_path)
    target = offload_file(offload_path, h, "an offloaded value")
    directory = target.parent
    try:
        stored = target.stat().st_size == len(data)  # content-addressed: the same bytes
    except OSError:
        stored = False
    if stored:
        with contextlib.suppress(OSError):  # touched, so a pending purge sees the reuse
            os.utime(target)
        return
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{h[:16]}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise ConfigError(f"cannot write to offload_path {offload_path}: {exc}") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class open_offload:
    """Map ``<offload_path>/<h>`` read-only (a ``PayloadError`` if it is missing, or if ``h``
    is not a hash)."""

    def __init__(self, offload_path: str, h: str, what: str) -> None:
        path = offload_file(offload_path, h, what)
        purge_due(offload_path)
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                self._map = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) if size else None
        except FileNotFoundError:
            raise PayloadError(
                f"{what}: offloaded value {h} is missing: no file {path} (is offload_path "
                "shared by the controller and every worker?)"
            ) from None
        except OSError as exc:
            raise PayloadError(f"{what}: cannot read offloaded value {path}: {exc}") from exc

    def __enter__(self) -> bytes | mmap.mmap:
        return b"" if self._map is None else self._map

    def __exit__(self, *exc: object) -> None:
        if self._map is not None:
            self._map.close()


def remove_offload(
    offload_path: str | None, hashes: Iterable[str], written_before: float = math.inf
) -> None:
    """Delete the offload files of ``hashes``. A missing file is ignored; a name that is not a
    hash, or a file that cannot be deleted, is skipped with a logged warning (a corrupt backend
    must neither fail a deletion nor reach outside the directory). With ``written_before`` (a
    time), a file modified since then is kept: it was stored again meanwhile."""
    if offload_path is None:
        return
    for h in hashes:
        if not is_hash(h):
            log.warning(
                "offload_path %s: not deleting stored value %s: its name is not a hash "
                "(the backend holds corrupt or tampered data)",
                offload_path,
                shown(h),
            )
            continue
        path = Path(offload_path) / h
        try:
            if written_before < math.inf and path.stat().st_mtime > written_before:
                continue
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("offload_path %s: cannot delete stored value %s: %s", offload_path, h, exc)


# ---------------------------------------------------------------------- removal later
def schedule_purge(
    offload_path: str, namespace: str, hashes: Sequence[str], delay_s: float
) -> Path | None:
    """Have the offload files of ``hashes`` removed ``delay_s`` seconds from now, by this
    process (a daemon timer) or by any runq process that touches the directory after that (a
    marker file). Answers the marker's path: None when there is nothing to remove, or when the
    marker cannot be written (logged: a deletion does not fail for its files)."""
    names = sorted({h for h in hashes if is_hash(h)})
    remove_offload(offload_path, [h for h in hashes if not is_hash(h)])  # warns, deletes nothing
    if not names:
        return None
    now = time.time()
    try:
        marker = _write_marker(
            Path(offload_path) / _MARKERS,
            namespace,
            {"namespace": namespace, "written": now, "due": now + delay_s, "hashes": names},
        )
    except ConfigError as exc:  # (a host that does not see the shared directory)
        log.warning("the offload files of %r will stay: %s", namespace, exc)
        return None
    _arm(offload_path, marker, now + delay_s)
    return marker


def _write_marker(directory: Path, namespace: str, content: dict[str, Any]) -> Path:
    """Write ``content`` as a new marker in ``directory``, atomically (temporary file, then
    rename); scans skip names starting with a dot."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{namespace}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise ConfigError(f"cannot write a purge marker to {directory}: {exc}") from exc
    target = directory / f"{namespace}.{os.urandom(8).hex()}.json"
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(content, f)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _arm(offload_path: str, marker: Path, due: float) -> None:
    timer = threading.Timer(max(0.0, due - time.time()), _on_timer, (offload_path, marker, due))
    timer.daemon = True  # never keeps the process alive: markers cover an early exit
    timer.start()


def _on_timer(offload_path: str, marker: Path, due: float) -> None:
    if time.time() < due:  # the timer's clock ran ahead of the wall clock
        _arm(offload_path, marker, due)
        return
    try:
        _purge_marker(Path(offload_path), marker, time.time())
    except Exception:  # a timer thread has nobody to raise to
        log.warning("purging offload files of marker %s failed", marker, exc_info=True)


#: offload directory -> (its marker directory's mtime, the earliest due time seen there)
_seen: dict[str, tuple[int, float]] = {}
_seen_lock = threading.Lock()


def _after_fork_in_child() -> None:  # a fork while another thread held the lock
    global _seen_lock
    _seen_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def purge_due(offload_path: str) -> None:
    """Remove the files of the markers in ``offload_path`` that are due. Cheap: one ``stat``
    of the marker directory; it is read only when it changed or a marker seen falls due."""
    try:
        stamp = os.stat(Path(offload_path) / _MARKERS).st_mtime_ns
    except OSError:
        return  # no marker was ever written here
    now = time.time()
    with _seen_lock:
        seen = _seen.get(offload_path)
        if seen is not None and seen[0] == stamp and seen[1] > now:
            return
        _seen[offload_path] = (stamp, math.inf)  # this thread scans; others go on
    next_due = math.inf
    try:
        next_due = _scan(Path(offload_path), now)
    finally:
        with _seen_lock:
            _seen[offload_path] = (stamp, next_due)


def _scan(directory: Path, now: float) -> float:
    """Purge the due markers of ``directory``; answers the earliest due time left."""
    try:
        entries = [e for e in os.scandir(directory / _MARKERS) if not e.name.startswith(".")]
    except FileNotFoundError:
        return math.inf
    except OSError as exc:
        log.warning("cannot look for purge markers in %s: %s", directory / _MARKERS, exc)
        return math.inf
    next_due = math.inf
    for entry in entries:
        if entry.name.endswith(".json"):
            due = _purge_marker(directory, Path(entry.path), now)
            next_due = min(next_due, due)
    return next_due


def _purge_marker(directory: Path, marker: Path, now: float) -> float:
    """Remove the files a due marker names, then the marker; answers its due time if it is
    not due yet (else ``inf``). A marker that cannot be understood is removed, with a
    warning."""
    try:
        content = json.loads(marker.read_text())
        due, written = float(content["due"]), float(content["written"])
        hashes = [str(h) for h in content["hashes"]]
    except FileNotFoundError:
        return math.inf  # purged meanwhile by another thread or process
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("removing unreadable purge marker %s: %s", marker, exc)
        marker.unlink(missing_ok=True)
        return math.inf
    if due > now:
        return due
    remove_offload(str(directory), hashes, written_before=written)
    marker.unlink(missing_ok=True)
    return math.inf
