"""Worker liveness on Redis: heartbeats, lost workers, a worker's release, cancel and kill
requests (``base.Backend``'s "liveness" section).

Each transition is one script (``heartbeat``, ``release_worker``, ``request``; with
``_recovery_lib.lua``), given the recovery keys (``keys.NamespaceKeys.recovery``: ``hb`` holds
the heartbeat deadlines, ``w:kill`` / ``w:cancel`` the requests, then the worker's log) after
the static ones; queue pairs follow, asked for with ``NEEDQ`` as everywhere else. A request
(``request.lua``) is followed by a token on the control wake list of each worker asked
(``wake:c:<worker>``), on which its control thread blocks between heartbeats
(``wait_for_request``): requests reach a worker at once, and nobody polls for them.
"""

from __future__ import annotations

from collections.abc import Sequence

from runq.backends.records import Control
from runq.backends.redis.core import RedisCore
from runq.backends.redis.errors import translated
from runq.backends.redis.replies import text
from runq.models import TaskStatus

__all__ = ["RedisLiveness"]


class RedisLiveness(RedisCore):
    """The liveness verbs of ``RedisBackend``."""

    @translated
    def _heartbeat(self, worker_id: str, ttl_s: float | None) -> Control:
        ttl = "" if ttl_s is None else repr(float(ttl_s))
        keys = self._k.recovery(worker_id)
        active, kill, cancel, known = self._eval("heartbeat", keys, [], [worker_id, ttl])
        return Control(bool(active), bool(kill), text(cancel) or None, bool(known))

    @translated
    def detect_lost(self) -> list[str]:
        raw: list[bytes] = self._r.zrangebyscore(  # type: ignore[assignment]
            self._k.key("hb"), "-inf", self._server_time()
        )
        lapsed = [text(wid) for wid in raw]
        return [w for w in lapsed if self._release(w, "LOST", "heartbeat lapsed", lapsed=True)[0]]

    @translated
    def _duty_lease(self, worker_id: str, ttl_s: float) -> bool:
        ms = str(max(0, round(ttl_s * 1000)))
        return bool(self._eval("duty_lease", [self._k.key("duty")], [], [worker_id, ms]))

    @translated
    def _release_worker(self, worker_id: str, status: str, message: str) -> str | None:
        return self._release(worker_id, status, message, lapsed=False)[1]

    def _release(
        self, worker_id: str, status: str, message: str, lapsed: bool
    ) -> tuple[bool, str | None]:
        """(whether the worker was released, its released task id); with ``lapsed``, only if
        its heartbeat lapsed (checked in the script)."""
        args = [worker_id, status, message, "1" if lapsed else "0"]
        keys = self._k.recovery(worker_id)
        done, task_id = self._eval("release_worker", keys, self._known_queues(), args)
        return bool(done), (text(task_id) or None)

    @translated
    def _request_cancel(self, task_id: str) -> TaskStatus:
        status, worker_id = self._eval("request", self._k.recovery(), [], ["cancel", task_id])
        if worker_id:
            self._wake_control([text(worker_id)])
        return TaskStatus(text(status))

    @translated
    def _request_kill(self, worker_ids: Sequence[str]) -> None:
        asked = self._eval("request", self._k.recovery(), [], ["kill", *worker_ids])
        self._wake_control([text(w) for w in asked])

    @translated
    def wait_for_request(
        self, worker_id: str, timeout_s: float, wake_fd: int | None = None
    ) -> None:
        self._waits.blpop([self._k.control_wake(worker_id)], timeout_s, wake_fd)
