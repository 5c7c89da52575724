"""``runq web``: a web dashboard of one namespace (Starlette, served by uvicorn), which reads
and acts through runq's public API only. Needs the ``web`` extra: ``pip install 'runq[web]'``.

``create_app(ctl, token=None)`` builds the ASGI application; ``runq web QUEUE_ID`` serves it.
"""

from __future__ import annotations

from runq.web.app import create_app

__all__ = ["create_app"]
