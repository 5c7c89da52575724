"""The benchmark's task: a no-op that returns its argument (so a result is stored and checked).

Workers of every system import it as ``tasks`` (bench/ is on their PYTHONPATH).
"""

from __future__ import annotations

from typing import Any


def noop(x: Any = None) -> Any:
    return x
