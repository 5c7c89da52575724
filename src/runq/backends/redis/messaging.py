"""Worker messaging on Redis: messages, pause/resume, forgetting workers, saved configs, the
worker environment (``base.Backend``'s "messaging" section).

Keys are in ``keys.py`` (``msg:<worker>``, ``resp:<worker>``, ``wake:r:<message>``,
``m:clock``, ``configs``, ``envir``); transitions are the scripts ``message_send``,
``message_take``, ``message_respond``, ``worker_pause`` and ``worker_delete`` (``lua/``), every
key passed through ``KEYS``. Single-command verbs (configs, the environment) need no script:
one Redis command is atomic.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from runq.backends.redis.connection import MAX_BLOCK_S
from runq.backends.redis.core import RedisCore
from runq.backends.redis.errors import blpop_or_return, read_retried, translated
from runq.backends.redis.replies import text
from runq.exceptions import BackendError
from runq.models import Message

__all__ = ["RedisMessaging"]

_NEEDW_ROUNDS = 8


class RedisMessaging(RedisCore):
    """The messaging verbs of ``RedisBackend``."""

    # ------------------------------------------------------------------ messages
    @translated
    def _message_send(
        self, worker_ids: Sequence[str] | None, command: str, args: bytes
    ) -> tuple[str, list[str]]:
        all_active = worker_ids is None
        targets = [] if worker_ids is None else list(dict.fromkeys(worker_ids))
        for _ in range(_NEEDW_ROUNDS):
            keys = [self._k.message_clock]
            for wid in targets:
                keys += (self._k.worker_messages(wid), self._k.worker_wake(wid))
            reply = self._run(
                "message_send", keys, ["1" if all_active else "0", command, args, *targets]
            )
            if isinstance(reply[0], list):  # NEEDW: active workers we did not know of
                targets += [text(w) for w in reply[0][1:]]
                continue
            mid, *sent = (text(x) for x in reply)
            return mid, sent
        raise BackendError("Redis script message_send kept finding new workers")

    @translated
    def message_take(self, worker_id: str) -> list[Message]:
        k = self._k
        keys = [k.worker_log(worker_id), k.worker_messages(worker_id), k.worker_wake(worker_id)]
        out = []
        for raw in self._run("message_take", keys, [worker_id]):
            mid, command, args = bytes(raw).split(b"\n", 2)
            out.append(Message(mid.decode(), command.decode(), args))
        return out

    @translated
    def _message_respond(
        self, worker_id: str, message_id: str, command: str, response: bytes
    ) -> None:
        k = self._k
        keys = [k.worker_log(worker_id), k.worker_responses(worker_id), k.response_wake(message_id)]
        self._run("message_respond", keys, [worker_id, message_id, command, response])

    @read_retried
    def message_responses(self, message_id: str, worker_ids: Sequence[str]) -> list[bytes | None]:
        pipe = self._r.pipeline(transaction=False)
        for wid in worker_ids:
            pipe.hget(self._k.worker_responses(wid), message_id)
        return list(pipe.execute())

    @translated
    def message_delete_responses(self, message_id: str, worker_ids: Sequence[str]) -> None:
        pipe = self._r.pipeline(transaction=True)
        for wid in worker_ids:
            pipe.hdel(self._k.worker_responses(wid), message_id)
        pipe.execute()

    @read_retried
    def message_response_ids(self, worker_id: str) -> list[str]:
        return sorted(text(x) for x in self._r.hkeys(self._k.worker_responses(worker_id)))

    @translated  # message_responses retries on its own; a broken BLPOP returns early
    def wait_response(self, message_id: str, worker_ids: Sequence[str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        wake = self._k.response_wake(message_id)
        while True:
            if all(r is not None for r in self.message_responses(message_id, worker_ids)):
                return
            block_s = min(deadline - time.monotonic(), MAX_BLOCK_S)
            if block_s < 0.001:  # BLPOP's 0 would block for ever
                return
            blpop_or_return(self._r, [wake], block_s)

    # ------------------------------------------------------------------ workers
    @translated
    def worker_pause(self, worker_id: str, paused: bool) -> None:
        log = self._k.worker_log(worker_id)
        self._run("worker_pause", [log], [worker_id, "1" if paused else "0"])

    @translated
    def worker_delete(self, worker_ids: Sequence[str]) -> list[str]:
        ids = list(dict.fromkeys(worker_ids))
        if not ids:
            return []
        k, keys = self._k, list[str]()
        for wid in ids:
            keys += (k.worker_log(wid), k.worker_messages(wid))
            keys += (k.worker_responses(wid), k.worker_wake(wid))
        return [text(x) for x in self._run("worker_delete", keys, ids)]

    # ------------------------------------------------------------------ configs, environment
    @translated
    def config_save(self, name: str, config_json: str, overwrite: bool) -> bool:
        if overwrite:
            self._r.hset(self._k.configs, name, config_json)
            return True
        return bool(self._r.hsetnx(self._k.configs, name, config_json))

    @read_retried
    def config_read(self, name: str) -> str | None:
        value = self._r.hget(self._k.configs, name)
        return None if value is None else text(value)

    @read_retried
    def config_list(self) -> list[str]:
        return sorted(text(x) for x in self._r.hkeys(self._k.configs))

    @translated
    def envir_save(self, payload: bytes | None) -> None:
        if payload is None:
            self._r.delete(self._k.envir)
        else:
            self._r.set(self._k.envir, payload)

    @read_retried
    def envir_load(self) -> bytes | None:
        value = self._r.get(self._k.envir)
        if value is None:
            return None
        return value if isinstance(value, bytes) else value.encode()
