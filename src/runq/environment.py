"""``runq.envir``: build the common worker environment function for ``workers.envir_set``."""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from runq.exceptions import ConfigError
from runq.serialize import Codec, Kind

__all__ = ["Envir", "build", "envir"]


@dataclass(frozen=True, slots=True)
class Envir:
    """A worker environment ``create(ns)``: import ``modules`` into ``ns`` (as the
    ``import`` statement binds them: ``os.path`` binds ``os``), then exec each file of
    ``sources`` in ``ns`` (paths relative to the worker's working directory). Picklable by
    reference, so it travels to workers on other machines as long as they have the files."""

    modules: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    def __call__(self, ns: dict[str, Any]) -> None:
        for name in self.modules:
            importlib.import_module(name)
            top = name.partition(".")[0]
            ns[top] = importlib.import_module(top)
        for path in self.sources:
            with open(path, encoding="utf-8") as f:
                code = compile(f.read(), path, "exec")
            exec(code, ns)


def envir(modules: Sequence[str] = (), sources: Sequence[str | os.PathLike[str]] = ()) -> Envir:
    """The ``create`` function for ``ctl.workers.envir_set`` that imports ``modules`` and
    runs the Python files ``sources`` in each worker's environment."""
    if isinstance(modules, str) or isinstance(sources, str | os.PathLike):
        raise ConfigError("modules and sources must be lists (of names / file paths)")
    names = tuple(modules)
    for name in names:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"module names must be non-empty strings, got {name!r}")
    return Envir(names, tuple(os.fspath(p) for p in sources))


def build(codec: Codec, payload: bytes | None) -> dict[str, Any]:
    """A worker environment: a fresh namespace filled by the sealed ``create`` function
    ``payload`` (empty without one). Its errors propagate to the caller."""
    ns: dict[str, Any] = {}
    if payload:
        codec.loads(payload, Kind.ENVIRONMENT, "", "the worker environment")(ns)
    return ns
