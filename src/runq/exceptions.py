"""runq's exceptions: one root, a shallow tree.

    RunqError
    ├── BackendError                 the backend failed or refused
    │   ├── BackendUnavailable       cannot connect / connection lost
    │   └── SchemaVersionMismatch    the namespace was written by another runq schema
    ├── PayloadError                 a stored call or result cannot be used
    │   ├── PayloadRejected          signature missing or wrong (see SPEC §5)
    │   └── SerializationError       cannot be pickled / unpickled
    ├── ConfigError                  a bad option, URL, name or value
    │   └── UnknownNamespaceError    a namespace opened with ``create=False`` does not exist
    ├── UnknownTaskError             an id that the namespace does not hold (also a KeyError)
    ├── UnknownValueError            a hash the object store does not hold (also a KeyError)
    ├── TaskStateError               the operation does not fit the task's status
    ├── WaitTimeout                  a wait ran out of time (also a TimeoutError)
    ├── WorkerDied                   the process running a task died before it reported an
    │                                outcome: the task ends DIED, its TaskError's type
    │                                reads "WorkerDied"
    ├── TaskError                    a task raised: a value returned by ``result()``,
    │                                raised by ``result(error=True)``
    └── MessageError                 a worker refused or failed a message: the value of
                                     its response (``ctl.messages.get_response``)

    Retry                            not an error: raised by a task to ask for another run

Every message says what was wrong and, where it can, how to fix it.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "BackendUnavailable",
    "ConfigError",
    "MessageError",
    "PayloadError",
    "PayloadRejected",
    "Retry",
    "RunqError",
    "SchemaVersionMismatch",
    "SerializationError",
    "TaskError",
    "TaskStateError",
    "UnknownNamespaceError",
    "UnknownTaskError",
    "UnknownValueError",
    "WaitTimeout",
    "WorkerDied",
]


class RunqError(Exception):
    """The root of every error runq raises."""


class BackendError(RunqError):
    """The backend failed or refused an operation."""


class BackendUnavailable(BackendError):
    """The backend cannot be reached (or the connection was lost)."""


class SchemaVersionMismatch(BackendError):
    """The namespace holds data written with another schema version."""


class PayloadError(RunqError):
    """A stored call or result cannot be used."""


class PayloadRejected(PayloadError):
    """A payload's signature is missing or does not match the secret."""


class SerializationError(PayloadError):
    """A value cannot be pickled or unpickled."""


class ConfigError(RunqError, ValueError):
    """A bad option, URL, name or value."""


class UnknownNamespaceError(ConfigError):
    """A namespace (queue id) that does not exist at the backend, opened with
    ``create=False`` (as read-only commands do): ``namespace``, the backend's ``address``
    (never with a password) and the namespaces that do ``exist`` there."""

    _SHOWN = 20  # namespaces named in the message at most

    def __init__(self, namespace: str, address: str, existing: list[str]) -> None:
        self.namespace = namespace
        self.address = address
        self.existing = existing
        if not existing:
            there = "there are no namespaces there"
        else:
            there = "namespaces there: " + ", ".join(existing[: self._SHOWN])
            if len(existing) > self._SHOWN:
                there += f", … ({len(existing)} in all)"
        super().__init__(f"namespace {namespace!r} does not exist at {address} ({there})")

    def __reduce__(self) -> tuple[type[UnknownNamespaceError], tuple[str, str, list[str]]]:
        return (UnknownNamespaceError, (self.namespace, self.address, self.existing))


class UnknownTaskError(RunqError, KeyError):
    """A task id the namespace does not hold."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class UnknownValueError(RunqError, KeyError):
    """A hash the object store does not hold (``ctl.store.get``, ``mget``, ``location``)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class TaskStateError(RunqError):
    """The operation does not fit the task's current status."""


class WaitTimeout(RunqError, TimeoutError):
    """A wait ran out of time before every task finished."""


class WorkerDied(RunqError):
    """The process running a task died before it reported the task's outcome (killed by a
    signal, ``os._exit``, a crash in native code …). The task ends DIED (or is retried while
    it has retries left); ``ctl.result`` gives a ``TaskError`` whose ``type`` is
    ``"WorkerDied"`` and whose message says how the process ended."""


class TaskError(RunqError):
    """What a task raised, as a value: ``type``, ``message`` and the remote ``traceback`` text.

    ``ctl.result(tid)`` returns it for a task that ended in ERROR (or TIMEOUT, …);
    ``ctl.result(tid, error=True)`` raises it.
    """

    def __init__(self, type: str, message: str, traceback: str = "") -> None:
        super().__init__(type, message, traceback)
        self.type = type
        self.message = message
        self.traceback = traceback

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"

    def __repr__(self) -> str:
        return f"TaskError(type={self.type!r}, message={self.message!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TaskError):
            return NotImplemented
        return (self.type, self.message, self.traceback) == (
            other.type,
            other.message,
            other.traceback,
        )

    def __hash__(self) -> int:
        return hash((self.type, self.message))

    def __reduce__(self) -> tuple[type[TaskError], tuple[str, str, str]]:
        return (TaskError, (self.type, self.message, self.traceback))


class MessageError(RunqError):
    """A worker's answer to a message it refused or failed (unknown command, EVAL not
    allowed, an expression that raised …), as a value: ``command`` and ``message``."""

    def __init__(self, command: str, message: str) -> None:
        super().__init__(command, message)
        self.command = command
        self.message = message

    def __str__(self) -> str:
        return f"{self.command}: {self.message}"

    def __repr__(self) -> str:
        return f"MessageError(command={self.command!r}, message={self.message!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MessageError):
            return NotImplemented
        return (self.command, self.message) == (other.command, other.message)

    def __hash__(self) -> int:
        return hash((self.command, self.message))

    def __reduce__(self) -> tuple[type[MessageError], tuple[str, str]]:
        return (MessageError, (self.command, self.message))


class Retry(Exception):
    """Raised by a task to ask for another run: ``raise runq.Retry(delay=10)``.

    The task goes back to the backend's delayed set and runs again after ``delay`` seconds
    (None: the task's ``retry_backoff`` schedule), whatever its ``retry_on``. Each run counts
    against the task's ``retries``: with none left the task ends ERROR with a ``TaskError``
    of type ``"Retry"`` saying so. ``ctl.info(tid)`` shows the attempts and, while it waits,
    ``extra["retry_at"]``.
    """

    def __init__(self, delay: float | None = None, reason: str = "") -> None:
        if delay is not None and (
            isinstance(delay, bool) or not isinstance(delay, int | float) or not delay >= 0
        ):
            raise ConfigError(f"Retry(delay=...) must be seconds >= 0 or None, got {delay!r}")
        super().__init__(delay, reason)
        self.delay = None if delay is None else float(delay)
        self.reason = reason

    def __str__(self) -> str:
        when = "with back-off" if self.delay is None else f"in {self.delay:g} s"
        return f"the task asked to run again {when}" + (f": {self.reason}" if self.reason else "")
