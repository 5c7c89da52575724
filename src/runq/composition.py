"""Composition: signatures (``runq.sig``, ``task.s``) and the chain, group and chord built on
``depends_on``.

A ``Signature`` is a call not yet submitted: a function, its arguments and its options.
``chain``, ``group`` and ``chord`` turn signatures into tasks in one atomic ``enqueue``
(``Backend.enqueue`` accepts dependencies on earlier tasks of the same batch), so a chain
or chord is stored whole or not at all:

- ``chain(s1, s2, s3)``: s2 depends on s1, s3 on s2; each gets its dependency's result as
  its first argument;
- ``group(s1, s2)``: independent tasks;
- ``chord([s1, s2], body)``: ``body`` depends on every header task and gets the list of
  their results, in header order, as its first argument.

How a task receives results: the task's stored options name the tasks whose results it
takes (``RESULTS_FROM``) and whether as one value or a list (``RESULTS_AS``). The worker
reads those results from the backend just before the call (``worker/runner.py``), so nothing
of a result travels through the controller. Since a dependant is queued only by the
transition that COMPLETEs its last dependency (``finish``), the chord body is queued by the
same atomic transition that stores the last header result, and a failed task makes the
rest of its chain or chord IMPOSSIBLE, as ``depends_on`` does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runq.exceptions import ConfigError
from runq.models import NewTask
from runq.options import OPTION_NAMES, RESULTS_AS, RESULTS_FROM, TaskOptions, call_arguments
from runq.serialize import Call
from runq.submission import Submitter, function_label

__all__ = ["RESULTS_AS", "RESULTS_FROM", "Signature", "chain", "chord", "group", "sig"]


@dataclass(frozen=True, slots=True)
class Signature:
    """A call not yet submitted: ``fn(*args, **kwargs)`` with its task options (``queue``,
    ``timeout``, ``retries`` … as ``enqueue`` takes them). Build one with ``runq.sig`` or
    ``my_task.s(...)``; submit it with ``ctl.chain``, ``ctl.group`` or ``ctl.chord``."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    def set(self, **options: Any) -> Signature:
        """The same call with these task options added (checked now: ``ConfigError``)."""
        merged = {**self.options, **options}
        _check_options(merged)
        return dataclasses.replace(self, options=merged)

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", None) or getattr(self.fn, "name", repr(self.fn))
        return f"sig({name}, args={self.args!r}, kwargs={self.kwargs!r})"


def sig(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Signature:
    """A signature of ``fn(*args, **kwargs)``: a call to submit later as part of a chain,
    group or chord. Task options are added with ``.set(queue=..., timeout=...)``."""
    if not callable(fn):
        raise ConfigError(f"runq.sig needs a callable first, got {fn!r}")
    return Signature(fn, tuple(args), dict(kwargs))


def _check_options(options: Mapping[str, Any]) -> None:
    if "depends_on" in options:
        raise ConfigError(
            "a signature cannot take depends_on: chain, group and chord set the dependencies"
        )
    unknown = sorted(set(options) - OPTION_NAMES)
    if unknown:
        raise ConfigError(
            f"unknown signature option(s) {', '.join(map(repr, unknown))}; valid options: "
            f"{', '.join(sorted(OPTION_NAMES))}"
        )
    TaskOptions.build(**{k: v for k, v in options.items() if not callable(v)})


def _signatures(items: Sequence[object], where: str) -> list[Signature]:
    out = []
    for item in items:
        if not isinstance(item, Signature):
            raise ConfigError(
                f"{where} takes signatures (runq.sig(fn, *args) or my_task.s(*args)), got {item!r}"
            )
        out.append(item)
    return out


def _new_task(
    submitter: Submitter, s: Signature, deps: Sequence[str], results_as: str | None
) -> NewTask:
    """One task of a composition: ``s`` depending on ``deps``, getting their results as its
    first argument (``results_as``: "value", "list", or None for none)."""
    options = dict(s.options)
    queue = options.get("queue")
    if callable(queue):  # a @task(queue=callable) picks its queue at each submission
        options["queue"] = queue()
    opts = TaskOptions.build(**options)
    args, kwargs = call_arguments(s.args, s.kwargs)
    call = Call("call", submitter.function_bytes(s.fn), args, kwargs, retry_on=opts.retry_on)
    (task,) = submitter.new_tasks([call], opts, list(deps), function_label(s.fn))
    if results_as is None:
        return task
    extra = {RESULTS_FROM: list(deps), RESULTS_AS: results_as}
    return dataclasses.replace(task, options={**task.options, **extra})


def _submit(submitter: Submitter, tasks: list[NewTask]) -> list[str]:
    if tasks:
        submitter.session.backend.enqueue(tasks)  # all or none, in-batch dependencies
    return [t.id for t in tasks]


def chain(submitter: Submitter, signatures: Sequence[object]) -> list[str]:
    """Submit a chain (see the module docstring) and return its ids in order."""
    sigs = _signatures(signatures, "chain")
    if not sigs:
        raise ConfigError("chain needs at least one signature")
    tasks: list[NewTask] = []
    for s in sigs:
        if tasks:
            tasks.append(_new_task(submitter, s, [tasks[-1].id], "value"))
        else:
            tasks.append(_new_task(submitter, s, [], None))
    return _submit(submitter, tasks)


def group(submitter: Submitter, signatures: Sequence[object]) -> list[str]:
    """Submit independent tasks at once (one atomic enqueue) and return their ids."""
    sigs = _signatures(signatures, "group")
    return _submit(submitter, [_new_task(submitter, s, [], None) for s in sigs])


def chord(submitter: Submitter, header: Sequence[object], body: object) -> tuple[list[str], str]:
    """Submit a chord (see the module docstring): the header's ids and the body's id."""
    if isinstance(header, Signature) or not isinstance(header, Sequence):
        raise ConfigError(f"chord's header must be a list of signatures, got {header!r}")
    sigs = _signatures(header, "chord's header")
    (body_sig,) = _signatures([body], "chord's body")
    tasks = [_new_task(submitter, s, [], None) for s in sigs]
    tasks.append(_new_task(submitter, body_sig, [t.id for t in tasks], "list"))
    ids = _submit(submitter, tasks)
    return ids[:-1], ids[-1]
