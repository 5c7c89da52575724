"""Wake pipes: how one thread of a worker ends another's wait at once.

A waiting thread ``select``\\ s on the read end of a non-blocking pipe beside what it waits
for (a backend socket, a child's pipe); any thread, or a signal handler, ends that wait by
writing one byte to the write end. The waiter drains the pipe once it is awake: the news
itself is in flags the writer set before it poked.
"""

from __future__ import annotations

import contextlib
import os

__all__ = ["drain", "new", "poke"]


def new() -> tuple[int, int]:
    """A non-blocking pipe: (read end, write end)."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)
    return read_fd, write_fd


def poke(fd: int) -> None:
    """Write a wake-up byte to ``fd``; a full pipe (a wake-up is pending anyway) or a closed
    one is let be."""
    with contextlib.suppress(BlockingIOError, OSError):
        os.write(fd, b"!")


def drain(fd: int) -> None:
    """Read every pending wake-up byte from ``fd``."""
    with contextlib.suppress(BlockingIOError, OSError):
        while os.read(fd, 512):
            pass
