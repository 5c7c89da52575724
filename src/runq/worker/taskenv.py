"""``RUNQ_TASK_ID`` in the warm child's environment, set for each task without leaking.

``os.environ[name] = value`` calls C's ``setenv``, and glibc's ``setenv`` copies every value it
is given into memory it never frees (it keeps them all in a search tree, so that a pointer
``getenv`` once returned stays valid). A warm child gives each task a new id: measured, about
96 bytes kept per task (96 MB per million tasks, for the child's whole life) and a lookup in
a tree that grows with every task (2-3 µs a task in a loop, more in a busy child).

``TaskIdEnv`` instead hands C's ``putenv`` a buffer of its own ("RUNQ_TASK_ID=<32 hex>"):
``putenv`` puts the string itself in the environment, with no copy and no tree. Each task's
id is written into the buffer that is *not* installed, which is then installed in place of the
other (two buffers, in turn: the installed string is never rewritten), and
``os.environ``'s own mapping is given the same value, as ``os.environ.__setitem__`` does
after its ``setenv``. So a task sees exactly what it saw before, in ``os.environ``, in C's
``getenv`` and in the processes it starts, and a task that set or deleted the variable itself
finds it set again at the next task. Where ``putenv`` might copy (not glibc) or ctypes is
missing, it falls back to ``os.environ``.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["TaskIdEnv", "glibc"]

_NAME = "RUNQ_TASK_ID"
_KEY = os.fsencode(_NAME)  # as os.environ's mapping holds it
_PREFIX = _KEY + b"="
_ID_LEN = 32  # a checked runq task id (``options.is_task_id``)


class TaskIdEnv:
    """Sets ``RUNQ_TASK_ID`` for each task (see the module docstring)."""

    def __init__(self) -> None:
        self._putenv: Callable[[int], int] | None = None  # None: through os.environ
        self._data: dict[bytes, bytes] = {}
        self._addrs: list[int] = []
        self._views: list[memoryview] = []
        self._turn = 0
        if not glibc():
            return  # POSIX's putenv keeps the string, but some C libraries copied it
        # os.environ's mapping of encoded names to encoded values, which __setitem__ updates
        # after its setenv: it has no public way to record a value set by other means.
        environ: Any = os.environ  # (typeshed does not declare the mapping)
        data = getattr(environ, "_data", None)
        try:
            libc = ctypes.CDLL(None)
            malloc, putenv = libc.malloc, libc.putenv
        except (OSError, AttributeError):
            return
        if not isinstance(data, dict):
            return
        malloc.argtypes, malloc.restype = [ctypes.c_size_t], ctypes.c_void_p
        putenv.argtypes, putenv.restype = [ctypes.c_void_p], ctypes.c_int
        text = _PREFIX + b"0" * _ID_LEN + b"\0"
        for _ in range(2):
            # C memory, never freed: the environment may point at it until the process ends
            # (Python memory could be freed first, at interpreter shutdown).
            addr = malloc(len(text))
            if not addr:
                return
            view = memoryview((ctypes.c_char * len(text)).from_address(addr)).cast("B")
            view[:] = text
            self._addrs.append(addr)
            self._views.append(view)
        self._putenv, self._data = putenv, data

    def set(self, task_id: str) -> None:
        """Make ``task_id`` (a checked runq task id) the environment's ``RUNQ_TASK_ID``."""
        putenv = self._putenv
        if putenv is None or len(task_id) != _ID_LEN or not task_id.isascii():
            os.environ[_NAME] = task_id
            return
        raw = task_id.encode("ascii")
        turn = self._turn ^ 1  # the buffer not installed now
        self._views[turn][len(_PREFIX) : len(_PREFIX) + _ID_LEN] = raw
        if putenv(self._addrs[turn]) != 0:  # no memory for a new slot: as os.environ does
            os.environ[_NAME] = task_id
            return
        self._turn = turn
        self._data[_KEY] = raw


def glibc() -> bool:
    """Whether this is Linux with the GNU C library (no file read, unlike
    ``platform.libc_ver``)."""
    if sys.platform != "linux":
        return False
    try:
        version = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):  # not defined here
        return False
    return version is not None and version.startswith("glibc ")
