"""The Redis backend's ear for finished tasks: one pub/sub subscription per backend object.

Every transition that finishes tasks publishes their ids on the namespace's ``done`` channel in
the same Lua script. A daemon thread, started by the first ``wait_change``, holds the
subscription on its own connection and appends each announcement to a bounded ring with a
sequence number; waiting threads sleep on a condition variable.

No completion is missed between two calls of one thread: each thread remembers the sequence
number at which its last wait returned and the next wait first looks at everything announced
since. A thread's first wait (and every wait after the subscription was lost and rebuilt)
cannot know what happened before, so the caller checks the statuses right after the
subscription is live (``recheck``), which closes the gap. If the ring has overflowed since a
thread's last wait, or the connection dropped, the wait returns at once: callers re-check.

The reader costs little per announcement, since a controller that waits hears every finished
task of the namespace, thousands a second in a drain: it reads the subscription's socket itself
(one ``recv`` for whatever arrived, parsed by hiredis, not redis-py's per-message path), and a
waiting thread is woken only by an announcement of an id it waits for (or when it must
re-check), not by every one; after announcements that woke nobody the reader pauses
``_COALESCE_S`` so that the next ones come in one read.

On a Redis Cluster the scripts announce with ``SPUBLISH`` and the ear holds an ``SSUBSCRIBE``
on the master of the namespace's slot (sharded pub/sub). When the slot moves away (a
resharding, a failover), that master ends the subscription (``sunsubscribe``) or the
connection breaks: as for a dropped connection, waiters re-check, the slot map is read again and
the subscription is made anew at the slot's new master.
"""

from __future__ import annotations

import contextlib
import os
import select
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Collection
from typing import Any

import hiredis
import redis
import redis.client
from redis.crc import key_slot

from runq.backends.redis.cluster import refresh_slots, slot_connection_pool

__all__ = ["DoneListener"]

#: Announcements remembered for threads between two waits.
_RING = 16_384
#: How long the reader blocks on the socket before looking at its stop flag.
_READ_S = 1.0
#: How long a first wait may take to get the subscription live.
_SUBSCRIBE_S = 10.0
#: How long the subscription outlives the last wait. Every finished task of the namespace is
#: announced, so a controller that stays subscribed while nobody waits pays for each one.
_IDLE_S = 2.0

_ANYTHING: frozenset[str] = frozenset({"\0anything"})  # "the connection dropped: re-check"
#: After announcements that concern no waiter, the reader lets the next ones pile up this
#: long (in a drain, thousands a second arrive for nobody): a waiter's own announcement
#: that comes meanwhile is noticed at most this much later.
_COALESCE_S = 0.001
#: Bytes read from the subscription's socket at once.
_RECV_BYTES = 1 << 16


class DoneListener:
    """Blocks callers until some task id they care about is announced on ``channel``."""

    def __init__(self, client: redis.Redis | redis.RedisCluster, channel: str) -> None:
        self._client = client
        self._channel = channel
        sharded = isinstance(client, redis.RedisCluster)
        #: The reply types of: the subscription's confirmation, an announcement, its end.
        self._kinds = (
            ("ssubscribe", "smessage", "sunsubscribe")
            if sharded
            else (
                "subscribe",
                "message",
                "unsubscribe",
            )
        )
        self._cond = threading.Condition()
        self._ring: deque[tuple[int, frozenset[str]]] = deque(maxlen=_RING)
        self._seq = 0  # sequence number of the newest announcement
        self._epoch = 0  # bumped each time the subscription is (re)established
        self._live = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._local = threading.local()
        self._waiting = 0  # threads inside wait()
        self._last_wait = time.monotonic()
        #: What each blocked waiter waits for (its own object as key); an announcement wakes
        #: the waiters only if it concerns one of them.
        self._wanted: dict[object, frozenset[str]] = {}

    def wait(
        self,
        ids: Collection[str],
        timeout_s: float,
        recheck: Callable[[], bool],
    ) -> None:
        """Return when one of ``ids`` (any id if empty) is announced, or after ``timeout_s``.

        ``recheck()`` answers whether some id has already finished; it is called when this
        thread cannot know what was announced before the subscription was live.
        """
        deadline = time.monotonic() + max(timeout_s, 0.0)
        with self._cond:
            self._waiting += 1
        try:
            self._start()
            self._wait(ids, deadline, timeout_s, recheck)
        finally:
            with self._cond:
                self._waiting -= 1
                self._last_wait = time.monotonic()

    def _wait(
        self,
        ids: Collection[str],
        deadline: float,
        timeout_s: float,
        recheck: Callable[[], bool],
    ) -> None:
        if not self._live.wait(min(_SUBSCRIBE_S, max(timeout_s, 0.0))):
            return  # not subscribed (yet): the caller re-checks
        wanted = frozenset(ids)
        with self._cond:
            since: int | None = getattr(self._local, "seq", None)
            fresh = since is None or getattr(self._local, "epoch", -1) != self._epoch
            if fresh:
                since = self._seq
            self._local.epoch = self._epoch
        assert since is not None
        if fresh and recheck():
            self._remember()
            return
        token = object()
        with self._cond:
            self._wanted[token] = wanted
            try:
                while not self._announced(wanted, since):
                    since = self._seq
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
            finally:
                del self._wanted[token]
        self._remember()

    def stop(self) -> None:
        """Ask the reader thread to end; closing the client's pool then wakes it at once."""
        self._stop.set()

    def join(self, timeout_s: float) -> None:
        """Wait (up to ``timeout_s``) for the reader thread to end."""
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout_s)

    # ------------------------------------------------------------------ internals
    def _remember(self) -> None:
        with self._cond:
            self._local.seq = self._seq

    def _announced(self, wanted: frozenset[str], since: int) -> bool:
        """Whether an announcement after ``since`` concerns ``wanted`` (caller holds the lock)."""
        if since >= self._seq:
            return False
        if not self._ring or self._ring[0][0] > since + 1:
            return True  # the ring overflowed: anything may have happened
        for seq, announced in reversed(self._ring):
            if seq <= since:
                break
            if announced is _ANYTHING or not wanted or not wanted.isdisjoint(announced):
                return True
        return False

    def _start(self) -> None:
        with self._cond:
            if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
                return
            if self._stop.is_set():
                raise RuntimeError("the backend was closed")
            self._pid = os.getpid()
            self._live.clear()
            self._thread = threading.Thread(
                target=self._run, name=f"runq-listen {self._channel}", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        backoff_s = 0.05
        while not self._stop.is_set():
            pubsub = self._pubsub()
            try:
                reader = self._subscribe(pubsub)
                backoff_s = 0.05
                while not self._stop.is_set():
                    replies = self._read(pubsub, reader)
                    if replies is None:
                        if self._idle():
                            return  # unsubscribe; the next wait starts a new reader
                        continue
                    woke = False
                    for reply in replies:
                        woke = self._take(reply) or woke
                    if not woke:  # nobody waits for these: let the next ones pile up a little
                        time.sleep(_COALESCE_S)
            except Exception:  # lost connection, or close() pulled it away: re-check, retry
                self._live.clear()
                self._push(_ANYTHING)  # whoever waits must re-check
                self._stop.wait(backoff_s)
                backoff_s = min(backoff_s * 2, 2.0)
                if isinstance(self._client, redis.RedisCluster) and not self._stop.is_set():
                    with contextlib.suppress(Exception):  # the slot may have moved
                        refresh_slots(self._client)
            finally:
                with contextlib.suppress(Exception):
                    pubsub.close()
        self._live.clear()

    def _take(self, reply: Any) -> bool:
        """One reply read on the subscription: an announcement (True if it woke a waiter), or
        the subscription's end; anything else (a health check's pong) is let go."""
        _, announcement, ended = self._kinds
        if not isinstance(reply, list) or not reply:  # an error reply: subscribe anew
            raise redis.ConnectionError(f"unexpected reply on the subscription: {reply!r}")
        kind = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        if kind == announcement and len(reply) >= 3:
            return self._push(frozenset(reply[2].decode().split("\n")))
        if kind == ended:  # the slot moved away (cluster): subscribe anew
            raise redis.ConnectionError("the subscription was ended by the server")
        return False

    @staticmethod
    def _read(
        pubsub: redis.client.PubSub, reader: Any, timeout_s: float = _READ_S
    ) -> list[Any] | None:
        """The replies that arrived on the subscription (waiting up to ``timeout_s`` for the
        first), or None if none did. One ``recv`` takes whatever is there; hiredis parses it.
        redis-py's parser never reads this connection (it only sent the subscription), so
        no reply sits in its buffer."""
        conn = pubsub.connection
        sock = None if conn is None else conn._sock  # noqa: SLF001 - no public accessor
        if sock is None:
            raise redis.ConnectionError("the subscription's connection is closed")
        replies = _parsed(reader)
        if replies:
            return replies
        pending = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0  # TLS: decrypted
        if not pending and not select.select([sock], [], [], timeout_s)[0]:
            return None
        data = sock.recv(_RECV_BYTES)
        if not data:
            raise redis.ConnectionError("the server closed the subscription's connection")
        reader.feed(data)
        return _parsed(reader) or None

    def _pubsub(self) -> redis.client.PubSub:
        """A pub/sub object on the server that gets the announcements (on a cluster: the
        master of the channel's slot)."""
        if isinstance(self._client, redis.RedisCluster):
            slot = key_slot(self._channel.encode())
            return redis.client.PubSub(slot_connection_pool(self._client, slot))
        return redis.client.PubSub(self._client.connection_pool)

    def _idle(self) -> bool:
        """Whether nobody has waited for a while (then the reader ends, under the lock, so a
        wait that starts now sees the thread gone and starts a new one)."""
        with self._cond:
            idle = self._waiting == 0 and time.monotonic() - self._last_wait > _IDLE_S
            if idle:
                self._live.clear()
                self._thread = None
            return idle

    def _subscribe(self, pubsub: redis.client.PubSub) -> Any:
        """Subscribe and wait for the confirmation; the reader that parses the connection
        from then on (redis-py only sends the command: its replies are ours to read)."""
        confirmed = self._kinds[0]
        if confirmed == "ssubscribe":
            pubsub.ssubscribe(self._channel)
        else:
            pubsub.subscribe(self._channel)
        reader = hiredis.Reader()
        deadline = time.monotonic() + _SUBSCRIBE_S
        while time.monotonic() < deadline:
            replies = self._read(pubsub, reader) or []
            for i, reply in enumerate(replies):
                kind = reply[0] if isinstance(reply, list) and reply else None
                if kind == confirmed.encode():
                    with self._cond:
                        self._epoch += 1
                    self._live.set()
                    for later in replies[i + 1 :]:  # announced right after: not to be lost
                        self._take(later)
                    return reader
        raise redis.TimeoutError("no confirmation of SUBSCRIBE")

    def _push(self, announced: frozenset[str]) -> bool:
        """Record an announcement; True if it woke the waiters."""
        with self._cond:
            self._seq += 1
            self._ring.append((self._seq, announced))
            # Wake the waiters only if it concerns one of them; and every half ring, so that
            # none sleeps through an overflow of the ring (it then re-checks).
            if (
                announced is _ANYTHING
                or self._seq % (_RING // 2) == 0
                or any(not w or not w.isdisjoint(announced) for w in self._wanted.values())
            ):
                self._cond.notify_all()
                return True
            return False


def _parsed(reader: Any) -> list[Any]:
    """The complete replies the hiredis reader holds."""
    out = []
    while (reply := reader.gets()) is not False:
        out.append(reply)
    return out
