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

Two things spare a waiting controller its reads on the p50 path (submit, wait, result):
- Every announcement line carries the status the script just stored (``<id>\t<status>``; a
  bare ``<id>``, which no script sends any more, says only "finished"): ``wait`` answers the
  statuses it heard. Every announcement is of a finished status at the time of its script,
  and a finished task's status changes only to another finished one (MOVED, MISSING), so a
  status heard is as good as one read at that moment. ``wait`` answers only a whole account:
  every announcement of the ids waited for since this thread's previous wait, with its
  status, in the order announced (so in the order the tasks finished); if one was bare, or the
  ring overflowed, or the connection dropped, it answers nothing and the caller reads.
- ``mark`` notes, for ids about to be submitted while the subscription is live, the sequence
  number before their submission: every later announcement of them comes after it, so while
  that subscription lasts (``watches``) a wait on them needs no status read first; it looks at
  the ring from the mark.

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
import socket
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

__all__ = ["MARK_BATCH", "DoneListener"]

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
#: A waiter's PING on the subscription (see ``DoneListener._ping``) and the payload of its PONG.
_PING = b"*2\r\n$4\r\nPING\r\n$4\r\nrunq\r\n"
_PONG = b"runq"
#: After announcements that concern no waiter, the reader lets the next ones pile up this
#: long (in a drain, thousands a second arrive for nobody): a waiter's own announcement
#: that comes meanwhile is noticed at most this much later.
_COALESCE_S = 0.001
#: Bytes read from the subscription's socket at once.
_RECV_BYTES = 1 << 16
#: Submitted ids whose marks are kept (the oldest are forgotten: their waits read first).
_MARKS = 4096
#: A batch larger than this is not marked (its waits are many and read in chunks anyway).
MARK_BATCH = 64

#: One announcement: its sequence number, its ids, the statuses it carries (None: none).
_Entry = tuple[int, frozenset[str], dict[str, str] | None]
#: What a wait heard: task id -> ((sequence number, line), status or None) of its newest
#: announcement.
_Heard = dict[str, tuple[tuple[int, int], str | None]]
#: The key in ``_Heard`` that says the account is not whole (never a task id).
_UNSURE = ""


def _by_seq(item: tuple[str, tuple[tuple[int, int], str | None]]) -> tuple[int, int]:
    return item[1][0]


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
        self._ring: deque[_Entry] = deque(maxlen=_RING)
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
        #: Submitted id -> (epoch, sequence number) before its submission (see ``mark``).
        self._marks: dict[str, tuple[int, int]] = {}
        #: The subscription's socket, for the waiters' PINGs (None: none; see ``_ping``); the
        #: PINGs sent and the PONGs read on it; the waiters waiting for a PONG.
        self._sync_sock: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._pings = 0
        self._pongs = 0
        self._syncing = 0

    def wait(
        self,
        ids: Collection[str],
        timeout_s: float,
        recheck: Callable[[], bool],
    ) -> dict[str, str]:
        """Return when one of ``ids`` (any id if empty) is announced, or after ``timeout_s``:
        the statuses announced for ``ids`` since this thread's previous wait returned (the
        newest of each), in the order announced; or ``{}`` when that account is not sure to
        be whole (the caller then reads the statuses), or when nothing was announced.

        ``recheck()`` answers whether some id has already finished; it is called when this
        thread cannot know what was announced before the subscription was live.
        """
        deadline = time.monotonic() + max(timeout_s, 0.0)
        with self._cond:
            self._waiting += 1
        try:
            self._start()
            return self._wait(ids, deadline, timeout_s, recheck)
        finally:
            with self._cond:
                self._waiting -= 1
                self._last_wait = time.monotonic()

    def mark(self, ids: Collection[str]) -> None:
        """Note that ``ids`` are about to be submitted (call it before sending them): if the
        subscription is live now, every announcement of them will be heard after this point."""
        if len(ids) > MARK_BATCH:
            return
        with self._cond:
            if not self._live.is_set() or self._pid != os.getpid():
                return
            here = (self._epoch, self._seq)
            for task_id in ids:
                self._marks[task_id] = here
            while len(self._marks) > _MARKS:  # forget the oldest (dicts keep insertion order)
                del self._marks[next(iter(self._marks))]

    def watches(self, ids: Collection[str]) -> bool:
        """Whether every announcement of ``ids`` since they were submitted is sure to be seen
        by ``wait`` (all marked under the subscription that is live now): a wait on them then
        needs no status read first."""
        with self._cond:
            return bool(ids) and self._live.is_set() and self._marked(ids) is not None

    def _marked(self, ids: Collection[str]) -> int | None:
        """The oldest mark of ``ids`` if all are marked under the current subscription
        (caller holds the lock)."""
        oldest: int | None = None
        for task_id in ids:
            mark = self._marks.get(task_id)
            if mark is None or mark[0] != self._epoch:
                return None
            oldest = mark[1] if oldest is None else min(oldest, mark[1])
        return oldest

    def _wait(
        self,
        ids: Collection[str],
        deadline: float,
        timeout_s: float,
        recheck: Callable[[], bool],
    ) -> dict[str, str]:
        if not self._live.wait(min(_SUBSCRIBE_S, max(timeout_s, 0.0))):
            return {}  # not subscribed (yet): the caller re-checks
        wanted = frozenset(ids)
        with self._cond:
            since: int | None = getattr(self._local, "seq", None)
            fresh = since is None or getattr(self._local, "epoch", -1) != self._epoch
            marked = self._marked(wanted) if wanted else None
            if marked is not None:  # submitted under this subscription: look from there
                since, fresh = marked, False
            elif fresh:
                since = self._seq
            self._local.epoch = self._epoch
        assert since is not None
        if fresh and recheck():
            self._remember()
            return {}
        ticket = self._ping() if wanted else None
        heard: _Heard = {}
        found = False
        synced: bool | None = False
        token = object()
        with self._cond:
            self._wanted[token] = wanted
            try:
                while True:
                    found = self._announced(wanted, since, heard) or found
                    since = self._seq
                    if found:
                        synced = self._synced(ticket)
                        if synced is not False or not any(st for _, st in heard.values()):
                            break  # a status heard is believed only once synced (see _ping)
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._syncing += found  # the pong wakes only waiters that wait for it
                    try:
                        self._cond.wait(remaining)
                    finally:
                        self._syncing -= found
            finally:
                del self._wanted[token]
                # What this wait looked at, exactly: an announcement that came since is looked
                # at by this thread's next wait (its caller may rely on the account being whole)
                self._local.seq = since
        whole = synced is True and all(st is not None for _, st in heard.values())
        if not whole:
            return {}
        return {i: st for i, (_, st) in sorted(heard.items(), key=_by_seq) if st is not None}

    def _ping(self) -> tuple[int, int] | None:
        """Send a PING on the subscription (now, after this wait began); (epoch, its number).

        The reader may lag behind the server: an announcement it has not read yet may have
        changed a task after the announcement it has (a finished task retried by hand: MOVED,
        or deleted), even before this wait began. Announcements and the PONG come back in the
        order the server sent them, so once the PONG is read, the newest announcement of a task
        in the ring is its newest transition as of some moment after this wait began: only
        then is a status heard as good as a status read. On the p50 path the PONG comes back
        while the task still runs, so believing the status costs no wait. None: no PING sent
        (a TLS socket, which one thread must not write while another reads it)."""
        with self._cond:
            sock, epoch = self._sync_sock, self._epoch
            if sock is None:
                return None
            with self._send_lock:  # keeps the PINGs whole and numbered in the order sent
                try:
                    sock.sendall(_PING)
                except OSError:
                    return None
                self._pings += 1
                return epoch, self._pings

    def _synced(self, ticket: tuple[int, int] | None) -> bool | None:
        """Whether the PONG of ``ticket`` was read (None: it never will be; caller holds the
        lock)."""
        if ticket is None or ticket[0] != self._epoch or not self._live.is_set():
            return None
        return self._pongs >= ticket[1]

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

    def _announced(self, wanted: frozenset[str], since: int, heard: _Heard) -> bool:
        """Whether an announcement after ``since`` concerns ``wanted`` (caller holds the lock);
        what those announcements say of each wanted id goes into ``heard`` (the sequence
        number and status of the newest, the status None if it carried none), newer than what
        ``heard`` held. A ring that overflowed, or a dropped connection, puts ``_UNSURE`` in
        ``heard``: the account is not whole."""
        if since >= self._seq:
            return False
        if not self._ring or self._ring[0][0] > since + 1:
            heard[_UNSURE] = ((0, 0), None)
            return True  # the ring overflowed: anything may have happened
        found = False
        seen: set[str] = set()  # ids met in this pass (newest first): older ones say less
        for seq, announced, statuses in reversed(self._ring):
            if seq <= since:
                break
            if announced is _ANYTHING:
                heard[_UNSURE] = ((0, 0), None)
                found = True
                continue
            if not wanted:
                found = True
                continue
            hits: Collection[str] = wanted.intersection(announced)
            if len(hits) > 1 and statuses is not None:  # in the order of the lines: finished
                hits = [i for i in statuses if i in hits] + [i for i in hits if i not in statuses]
            for place, task_id in enumerate(hits):
                found = True
                if task_id not in seen:
                    seen.add(task_id)
                    status = None if statuses is None else statuses.get(task_id)
                    heard[task_id] = ((seq, place), status)
        return found

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
                with self._cond:
                    self._sync_sock = None
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
        """One reply read on the subscription: an announcement (True if it woke a waiter), a
        waiter's PONG (True), or the subscription's end; anything else (a health check's pong)
        is let go."""
        _, announcement, ended = self._kinds
        if reply == _PONG or (isinstance(reply, list) and reply[:2] == [b"pong", _PONG]):
            self._ponged()  # a waiter's PING (_ping): RESP3 answers it as outside pub/sub
            return True  # not an announcement for nobody: no pause (its own is coming)
        if not isinstance(reply, list) or not reply:  # an error reply: subscribe anew
            raise redis.ConnectionError(f"unexpected reply on the subscription: {reply!r}")
        kind = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        if kind == announcement and len(reply) >= 3:
            return self._push(*_parse(reply[2].decode()))
        if kind == ended:  # the slot moved away (cluster): subscribe anew
            raise redis.ConnectionError("the subscription was ended by the server")
        return False

    def _ponged(self) -> None:
        with self._cond:
            self._pongs += 1
            if self._syncing:
                self._cond.notify_all()

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
                self._sync_sock = None
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
                    conn = pubsub.connection
                    sock = None if conn is None else conn._sock  # noqa: SLF001 - as in _read
                    with self._cond:
                        self._epoch += 1
                        self._pings = self._pongs = 0
                        plain = isinstance(sock, socket.socket) and not isinstance(
                            sock, ssl.SSLSocket
                        )
                        self._sync_sock = sock if plain else None
                    self._live.set()
                    for later in replies[i + 1 :]:  # announced right after: not to be lost
                        self._take(later)
                    return reader
        raise redis.TimeoutError("no confirmation of SUBSCRIBE")

    def _push(self, announced: frozenset[str], statuses: dict[str, str] | None = None) -> bool:
        """Record an announcement; True if it woke the waiters."""
        with self._cond:
            self._seq += 1
            self._ring.append((self._seq, announced, statuses))
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


def _parse(text: str) -> tuple[frozenset[str], dict[str, str] | None]:
    """An announcement's ids, and the statuses its ``<id>\t<status>`` lines carry."""
    if "\t" not in text:
        return frozenset(text.split("\n")), None
    lines = [line.partition("\t") for line in text.split("\n")]
    return frozenset(i for i, _, _ in lines), {i: st for i, _, st in lines if st}


def _parsed(reader: Any) -> list[Any]:
    """The complete replies the hiredis reader holds."""
    out = []
    while (reply := reader.gets()) is not False:
        out.append(reply)
    return out
