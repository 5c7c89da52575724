"""The process-wide default controller and per-namespace settings (``runq.configure``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runq.exceptions import ConfigError
from runq.options import seconds

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
    """Open ``queue_id`` at ``url``, save its settings in the backend, return its controller.

    Settings: ``store_max_size`` (bytes; a value of the object store above it goes to a
    file in ``offload_path``), ``offload_path`` (a directory shared by the controller and
    every worker), and ``result_ttl`` / ``failure_ttl`` (seconds, or None: keep), the
    namespace's defaults for tasks that set none: a COMPLETE task is deleted ``result_ttl``
    seconds after it finished, one that ended otherwise ``failure_ttl`` seconds after (they
    apply to tasks submitted by controllers opened after the call). They are saved in the
    backend, so workers see them; settings not given keep their saved value. Any other name
    is a ``ConfigError``."""
    from runq.controller import Controller

    known = {"store_max_size", "offload_path", "result_ttl", "failure_ttl"}
    unknown = set(settings) - known
    if unknown:
        raise ConfigError(
            f"unknown setting(s) {sorted(unknown)}: runq.configure takes "
            f"url, {', '.join(sorted(known))}"
        )
    from runq._blobs import check_settings

    check_settings(settings.get("store_max_size"), settings.get("offload_path"))
    ttls: dict[str, Any] = {
        k: seconds(k, settings[k]) for k in ("result_ttl", "failure_ttl") if k in settings
    }
    controller = Controller(queue_id, url)
    if settings:
        saved = controller.backend.settings_get()
        saved.update(ttls)
        saved.update(
            check_settings(
                settings.get("store_max_size", saved.get("store_max_size")),
                settings.get("offload_path", saved.get("offload_path")),
            ).to_json()
        )
        controller.backend.settings_set(saved)
        controller.session.blobs.settings(refresh=True)
        controller.submitter.namespace_settings(refresh=True)
    return controller
