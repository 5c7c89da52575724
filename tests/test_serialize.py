"""How values are pickled (``runq.serialize.dumps``): what every queued task and stored result
carries, so its size matters (issue 14: memory per queued task)."""

from __future__ import annotations

import pickle
import pickletools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runq.serialize import Call, dumps, loads
from taskfns import add

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.binary(max_size=200),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=20,
)


def opcodes(data: bytes) -> set[str]:
    return {op.name for op, _, _ in pickletools.genops(data)}


@given(values)
def test_a_small_value_is_stored_without_a_frame_and_reads_back(value: Any) -> None:
    data = dumps(value)
    assert "FRAME" not in opcodes(data)
    assert loads(data) == value == pickle.loads(data)


@pytest.mark.parametrize("size", [65_000, 70_000, 300_000])
def test_a_value_of_several_frames_keeps_them(size: int) -> None:
    value = [b"x" * 1000] * 3 + [b"y" * size]
    data = dumps(value)
    assert loads(data) == value
    if size > 65_536:
        assert "FRAME" in opcodes(data)  # only a single frame is dropped


def test_a_task_payload_has_no_frame_at_either_level() -> None:
    call = Call("call", dumps(add), (1, 2), {})
    data = dumps(call)
    assert "FRAME" not in opcodes(data)
    assert call.fn_bytes is not None and "FRAME" not in opcodes(call.fn_bytes)
    assert loads(data) == call
