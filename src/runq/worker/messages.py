"""The worker's side of messages (``ctl.messages``): take them, run the command, answer.

A worker takes its messages whenever it has no task in hand: ``claim`` and ``finish`` decline
to hand it a task while one waits, so messages always come before the next task, and a busy
worker answers right after its current task. Every command answers a value; one that fails
or is refused answers a ``MessageError`` value and the worker carries on.

========== ==================================== ================================
command    args                                 answer
========== ==================================== ================================
PING       -                                    "PONG"
ECHO       text (printed on the worker stdout)  "OK"
EVAL       a Python expression (needs           its value, evaluated in the worker
           ``allow_eval=True``)                 environment
STOP       answer (default "BYE")               the answer; the worker then exits
INFO       -                                    the worker's info dict
PAUSE      -                                    "OK"; no tasks until RESUME
RESUME     -                                    "OK"
REFRESH    -                                    "OK" after rebuilding the environment
TIMEOUT_SET seconds (None: no limit)            "OK"; the idle timer restarts
TIMEOUT_GET -                                   (timeout_idle, seconds remaining)
========== ==================================== ================================

PING, ECHO, EVAL, INFO, PAUSE, RESUME, REFRESH (and TIMEOUT_SET) restart the idle timer
(``WorkerConfig.timeout_idle``); TIMEOUT_GET does not, so it can watch the timer run down.

The handler uses its worker only through ``MessageHost``: the worker's public surface.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, Protocol

from runq.backends import Backend
from runq.config import WorkerConfig
from runq.exceptions import MessageError
from runq.messages import args_place, response_place
from runq.models import Message
from runq.serialize import Codec, Kind
from runq.worker.retrying import Retrying

__all__ = ["COMMANDS", "MessageHandler", "MessageHost"]

_RESETS_IDLE = frozenset({"PING", "ECHO", "EVAL", "INFO", "PAUSE", "RESUME", "REFRESH"})


class _Refused(Exception):
    """A command the worker will not run; its text is the whole answer."""


class _Stop(Exception):
    """STOP: answer ``answer``, then exit."""

    def __init__(self, answer: Any) -> None:
        super().__init__(answer)
        self.answer = answer


class MessageHost(Protocol):
    """What the message handler uses of its worker (``Worker`` is one)."""

    @property
    def worker_id(self) -> str: ...
    @property
    def backend(self) -> Backend: ...
    @property
    def codec(self) -> Codec: ...
    @property
    def config(self) -> WorkerConfig: ...
    @property
    def envir(self) -> dict[str, Any]: ...  # the worker environment, which EVAL sees
    @property
    def retrying(self) -> Retrying: ...  # runs a backend call, retried while unreachable
    @property
    def idle_since(self) -> float: ...  # time.monotonic() when the idle timer started

    timeout_idle: float  # seconds the worker may sit idle (TIMEOUT_SET changes it)

    def event(self, event: str, message: str) -> None:
        """Log a named worker event."""

    def info(self) -> dict[str, Any]:
        """The worker's info block."""

    def reset_idle_timer(self) -> None:
        """Start counting idle time from now."""

    def load_envir(self, strict: bool) -> None:
        """Rebuild the worker environment (``strict``: a failure raises)."""


class MessageHandler:
    """Answers one worker's messages; holds its PAUSED state."""

    def __init__(self, worker: MessageHost) -> None:
        self.worker = worker
        self.paused = False
        self._commands: dict[str, Callable[[Any], Any]] = {
            "PING": self._ping,
            "ECHO": self._echo,
            "EVAL": self._eval,
            "STOP": self._stop,
            "INFO": self._info,
            "PAUSE": self._pause,
            "RESUME": self._resume,
            "REFRESH": self._refresh,
            "TIMEOUT_SET": self._timeout_set,
            "TIMEOUT_GET": self._timeout_get,
        }

    def process(self) -> tuple[bool, str | None]:
        """Take every waiting message and answer each in order. Returns (whether there were
        any, the reason to exit if one was STOP)."""
        w = self.worker
        messages = w.retrying(lambda: w.backend.message_take(w.worker_id))
        stop: str | None = None
        for message in messages:
            w.event("MESSAGE", f"{message.command} {message.id}")
            if stop is not None:
                value: Any = MessageError(message.command, "the worker is stopping")
            else:
                value, stop = self._answer(message)
            self._respond(message, value)
        return bool(messages), stop

    def _answer(self, message: Message) -> tuple[Any, str | None]:
        command = message.command
        handler = self._commands.get(command)
        if handler is None:
            known = ", ".join(self._commands)
            return MessageError(command, f"unknown command (known: {known})"), None
        try:
            args = self.worker.codec.loads(
                message.args, Kind.MESSAGE, args_place(command), f"message {message.id} args"
            )
            if command in _RESETS_IDLE:
                self.worker.reset_idle_timer()
            return handler(args), None
        except _Stop as stop:
            return stop.answer, "stopped by message"
        except _Refused as exc:
            return MessageError(command, str(exc)), None
        except Exception as exc:
            return MessageError(command, f"{type(exc).__name__}: {exc}"), None

    def _respond(self, message: Message, value: Any) -> None:
        w = self.worker
        place = response_place(message.id, w.worker_id)
        try:
            sealed = w.codec.dumps(value, Kind.MESSAGE, place, f"the response to {message.command}")
        except Exception as exc:
            error = MessageError(message.command, f"the answer cannot be sent: {exc}")
            sealed = w.codec.dumps(error, Kind.MESSAGE, place, "a message error")
        w.retrying(
            lambda: w.backend.message_respond(w.worker_id, message.id, message.command, sealed)
        )
        w.event("RESPONSE", f"{message.command} {message.id}")

    # ------------------------------------------------------------------ commands
    def _ping(self, args: Any) -> str:
        return "PONG"

    def _echo(self, args: Any) -> str:
        print("" if args is None else args, flush=True)
        return "OK"

    def _eval(self, args: Any) -> Any:
        if not self.worker.config.allow_eval:
            raise _Refused("EVAL is refused: start the worker with WorkerConfig(allow_eval=True)")
        if not isinstance(args, str):
            raise TypeError(f"EVAL needs an expression string, got {args!r}")
        return eval(args, dict(self.worker.envir))

    def _stop(self, args: Any) -> Any:
        raise _Stop("BYE" if args is None else args)

    def _info(self, args: Any) -> dict[str, Any]:
        return self.worker.info()

    def _pause(self, args: Any) -> str:
        self._set_paused(True)
        return "OK"

    def _resume(self, args: Any) -> str:
        self._set_paused(False)
        return "OK"

    def _set_paused(self, paused: bool) -> None:
        w = self.worker
        self.paused = paused
        w.retrying(lambda: w.backend.worker_pause(w.worker_id, paused))

    def _refresh(self, args: Any) -> str:
        self.worker.load_envir(strict=True)
        return "OK"

    def _timeout_set(self, args: Any) -> str:
        if args is None:
            seconds = math.inf
        elif isinstance(args, bool) or not isinstance(args, int | float) or not args >= 0:
            raise ValueError(f"TIMEOUT_SET needs seconds >= 0 (or None), got {args!r}")
        else:
            seconds = float(args)
        self.worker.timeout_idle = seconds
        self.worker.reset_idle_timer()
        return "OK"

    def _timeout_get(self, args: Any) -> tuple[float, float]:
        w = self.worker
        if math.isinf(w.timeout_idle):
            return (math.inf, math.inf)
        remaining = w.timeout_idle - (time.monotonic() - w.idle_since)
        return (w.timeout_idle, max(remaining, 0.0))


#: The commands a worker knows.
COMMANDS = (
    "PING",
    "ECHO",
    "EVAL",
    "STOP",
    "INFO",
    "PAUSE",
    "RESUME",
    "REFRESH",
    "TIMEOUT_SET",
    "TIMEOUT_GET",
)
