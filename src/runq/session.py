"""A ``Session``: what a controller holds open for its namespace.

The resolved settings (``runq.settings``), the backend connection, the codec that seals and
opens stored values, and the object store's data path. The controller's sub-APIs
(``ctl.queues``, ``ctl.workers``, ``ctl.store``, ``ctl.messages``), the submission seam
(``runq.submission``), the ``Executor`` and ``dispatch`` get this narrow context rather than
the whole ``Controller``.
"""

from __future__ import annotations

import ipaddress
import warnings
from dataclasses import dataclass
from urllib.parse import urlsplit

from runq._blobs import BlobStore
from runq.backends import Backend, connect
from runq.serialize import Codec
from runq.settings import Settings
from runq.urls import split_userinfo

__all__ = ["Session"]


@dataclass(frozen=True, eq=False, slots=True)
class Session:
    """One open namespace: its id, settings, backend, codec and object store."""

    queue_id: str
    settings: Settings
    backend: Backend
    codec: Codec
    blobs: BlobStore

    @classmethod
    def open(
        cls, queue_id: str, settings: Settings, *, check_version: bool, create: bool
    ) -> Session:
        """Connect to ``queue_id`` (see ``runq.backends.connect``). Without a secret, warns
        once per host when the backend is not on loopback."""
        backend = connect(
            settings.url,
            queue_id,
            check_version=check_version,
            password=settings.password,
            create=create,
        )
        codec = Codec(settings.secret, queue_id)
        if not codec.signed:
            warn_if_remote(settings.url)
        return cls(queue_id, settings, backend, codec, BlobStore(backend))

    def close(self) -> None:
        """Release the backend connections."""
        self.backend.close()


def warn_if_remote(url: str) -> None:
    """Warn once when payloads travel unsigned to a backend that is not on loopback."""
    scheme = url.split(":", 1)[0]
    if scheme in ("sqlite", "unix"):
        return
    host = urlsplit(split_userinfo(url)[0]).hostname or "localhost"  # a password may hold '/'
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and host not in WARNED:
        WARNED.add(host)
        warnings.warn(
            f"runq backend at {host} is not on loopback and no secret is set: anyone who can "
            "write to it can run code on your workers. Pass secret= (or set RUNQ_SECRET).",
            stacklevel=4,
        )


#: The hosts already warned about (once per process).
WARNED: set[str] = set()
