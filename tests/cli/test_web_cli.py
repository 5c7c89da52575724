"""``runq web`` refusals, as a subprocess, on both backends: an unknown namespace and a weak
token file are one-line errors, before anything is served."""

from __future__ import annotations

from pathlib import Path

import runq
from helpers import run_cli


def test_an_unknown_namespace_is_refused(backend_url: str, namespace: str) -> None:
    done = run_cli("web", namespace, "--port", "0", url=backend_url, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith("runq: error:") and namespace in done.stderr
    assert "Traceback" not in done.stderr


def test_a_weak_token_file_is_refused(
    ctl: runq.Controller, backend_url: str, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("short\n")
    done = run_cli(
        "web", ctl.queue_id, "--port", "0", "--token-file", str(token), url=backend_url
    )
    assert done.returncode == 1 and "at least 8 characters" in done.stderr
