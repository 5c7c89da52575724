"""The process-wide default controller and per-namespace settings (``runq.configure``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runq.exceptions import ConfigError

if TYPE_CHECKING:
    from runq.controller import Controller

__all__ = [
    "clear_default_controller",
    "configure",
    "get_default_controller",
    "set_default_controller",
]

_default: Controller | None = None


def set_default_controller(controller: Controller) -> None:
    """Make ``controller`` the one ``@task(...).delay()`` submits through by default."""
    from runq.controller import Controller

    global _default
    if not isinstance(controller, Controller):
        raise ConfigError(f"set_default_controller needs a Controller, got {controller!r}")
    _default = controller


def clear_default_controller() -> None:
    """Forget the default controller."""
    global _default
    _default = None


def get_default_controller() -> Controller:
    """The default controller; a ``ConfigError`` saying how to set one if there is none."""
    if _default is None:
        raise ConfigError(
            "no default controller: call runq.set_default_controller(runq.Controller(...)) or "
            "pass controller= to @task"
        )
    return _default


def configure(queue_id: str, url: str | None = None, **settings: Any) -> Controller:
    """Open ``queue_id`` at ``url`` and return its controller.

    Settings such as ``store_max_size`` and ``offload_path`` belong to the object store
    (see the data-path issue); any other name is a ``ConfigError``."""
    from runq.controller import Controller

    known = {"store_max_size", "offload_path"}
    unknown = set(settings) - known
    if unknown:
        raise ConfigError(
            f"unknown setting(s) {sorted(unknown)}: runq.configure takes "
            f"url, {', '.join(sorted(known))}"
        )
    return Controller(queue_id, url)
