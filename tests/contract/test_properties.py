"""Property-based: both backends give the same answer to any submission and any id.

Hypothesis generates ids (real ones, empty, with newlines or tabs, unicode, non-strings),
options (known and unknown names, every kind of value: NaN, infinity, negative, huge, wrong
types) and argument shapes; each is submitted to an SQLite and a Redis namespace that hold the
same tasks. Both must give the same error, or store the same record; after an error, nothing
may have been written (no task, no store value). A raw ``TypeError``/``ValueError`` escaping
the API is a failure: every bad input gets a runq error naming it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import runq
import taskfns
from helpers import RedisServer
from runq.exceptions import RunqError
from runq.models import NewTask
from runq.options import OPTION_NAMES
from runq.serialize import Call, Kind, dumps

PENDING_ID = "0" * 31 + "1"
CANCELLED_ID = "0" * 31 + "2"
EXISTING = [PENDING_ID, CANCELLED_ID]
EXAMPLES = 1000

Pair = tuple[runq.Controller, runq.Controller]
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,  # a backend round trip's time is not the property
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def pair(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """An SQLite and a Redis namespace holding the same two tasks (one PENDING, one
    CANCELLED), signed alike."""
    db = tmp_path_factory.mktemp("props") / "runq.db"
    ctls = (
        runq.Controller("props", f"sqlite:///{db}", secret=b"k"),
        runq.Controller("props", redis_server.url, secret=b"k"),
    )
    for ctl in ctls:
        ctl.backend.destroy()
        for tid in EXISTING:
            call = Call("call", dumps(taskfns.add), (1, 2), {})
            payload = ctl.codec.seal(dumps(call), Kind.CALL, tid)
            ctl.backend.enqueue([NewTask(tid, "default", payload, {"retries": 0})])
        ctl.backend.cancel_queued([CANCELLED_ID])
    yield ctls
    for ctl in ctls:
        ctl.backend.destroy()
        ctl.close()


# ---------------------------------------------------------------------------- strategies
weird_text = st.text(alphabet=st.sampled_from("ab0f\n\t \x00é/:@"), max_size=8)
an_id = st.one_of(
    st.sampled_from(EXISTING),
    st.just(""),
    weird_text,
    st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),  # well formed, unknown
    st.just(PENDING_ID + "\n" + CANCELLED_ID),  # two ids in one string
)
not_an_id = st.one_of(st.integers(), st.none(), st.binary(max_size=4), st.floats())
some_ids = st.one_of(
    an_id,
    st.lists(an_id, max_size=4),
    st.tuples(an_id, an_id),
    not_an_id,
    st.lists(st.one_of(an_id, not_an_id), min_size=1, max_size=3),
)
a_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=10**7),
    st.integers(min_value=2**62, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.timedeltas(min_value=timedelta(seconds=-5), max_value=timedelta(days=2)),
    weird_text,
    st.sampled_from(["parallel", "discard", "serial", "queue_one", "default", "high"]),
    st.sampled_from([ValueError, (ValueError, KeyError), ValueError(), [TimeoutError], "x"]),
)
some_options = st.dictionaries(
    st.sampled_from(sorted(OPTION_NAMES | {"colour", "countdown"})),
    a_value,
    max_size=3,
)
some_args = st.one_of(
    st.tuples(st.integers(-3, 3)),
    st.lists(st.integers(-3, 3), min_size=1, max_size=1),
    st.one_of(  # not a sequence of arguments
        st.integers(),
        st.text(max_size=3),
        st.none(),
        st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
        st.sets(st.integers(), max_size=2),
        st.lists(st.integers(-3, 3), min_size=3, max_size=3),  # add() takes two
    ),
)
some_kwargs = st.one_of(
    st.none(),
    st.dictionaries(st.sampled_from(["b"]), st.integers(-3, 3), max_size=1),
    st.one_of(  # not keyword arguments
        st.dictionaries(st.one_of(st.integers(), st.text(max_size=2)), st.integers(), max_size=2),
        st.lists(st.integers(), max_size=2),
        st.integers(),
    ),
)
maybe_options = st.one_of(st.just({}), some_options)


# ---------------------------------------------------------------------------- comparing
def _snapshot(ctl: runq.Controller) -> tuple[Any, ...]:
    return (ctl.list_tasks(), ctl.store.tags(), ctl.overview())


def _answer(ctl: runq.Controller, call: Callable[[runq.Controller], Any]) -> tuple[Any, ...]:
    """What ``call`` gave: ("error", type) with nothing written, or ("ok", value)."""
    before = _snapshot(ctl)
    try:
        value = call(ctl)
    except RunqError as exc:
        assert _snapshot(ctl) == before, f"half-written after {exc!r}"
        return ("error", type(exc).__name__)
    return ("ok", value)


def _same(pair: Pair, call: Callable[[runq.Controller], Any]) -> None:
    sqlite, redis_ = (_answer(ctl, call) for ctl in pair)
    assert sqlite == redis_
    event(
        f"answer: {sqlite[1] if sqlite[0] == 'error' else 'stored'}"
    )  # --hypothesis-show-statistics


def _record(ctl: runq.Controller, tid: str) -> tuple[Any, ...]:
    info = ctl.info(tid)
    data = ctl.data(tid)
    return (info.status, info.queue, info.options, info.depends_on, data["args"], data["kwargs"])


def _nan_free(value: Any) -> Any:
    """NaN != NaN: compare options with NaN spelled out."""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, dict):
        return {k: _nan_free(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------------- properties
@PROPERTY
@given(
    args=some_args,
    kwargs=some_kwargs,
    depends_on=st.one_of(st.none(), some_ids),
    options=maybe_options,
)
def test_a_submission_gets_the_same_answer_on_both_backends(
    pair: Pair, args: Any, kwargs: Any, depends_on: Any, options: dict[str, Any]
) -> None:
    def submit(ctl: runq.Controller) -> Any:
        tid = ctl.enqueue(taskfns.add, args, kwargs, depends_on=depends_on, **options)
        return _nan_free(_record(ctl, tid))

    _same(pair, submit)


@PROPERTY
@given(
    data=st.one_of(
        st.lists(
            st.one_of(
                st.integers(-3, 3),
                st.dictionaries(st.sampled_from(["a", "b"]), st.integers(), max_size=2),
            ),
            max_size=4,
        ),
        st.integers(),
        st.text(max_size=3),
        st.lists(
            st.dictionaries(
                st.one_of(st.integers(), st.text(max_size=1)), st.integers(), min_size=1, max_size=1
            ),
            min_size=1,
            max_size=2,
        ),
    ),
    common=st.one_of(
        st.none(),
        st.dictionaries(st.sampled_from(["b"]), st.integers(), max_size=1),
        st.lists(st.integers(), max_size=1),
    ),
    depends_on=st.one_of(st.none(), some_ids),
    options=maybe_options,
)
def test_a_bulk_submission_gets_the_same_answer_on_both_backends(
    pair: Pair, data: Any, common: Any, depends_on: Any, options: dict[str, Any]
) -> None:
    def submit(ctl: runq.Controller) -> list[tuple[Any, ...]]:
        ids = ctl.enqueue_bulk(taskfns.add, data, common, depends_on=depends_on, **options)
        return [_nan_free(_record(ctl, tid)) for tid in ids]

    _same(pair, submit)


@PROPERTY
@given(
    ids=some_ids,
    verb=st.sampled_from(["status", "exists", "times", "position", "results", "delete", "retry"]),
)
def test_any_ids_get_the_same_answer_on_both_backends(pair: Pair, ids: Any, verb: str) -> None:
    def ask(ctl: runq.Controller) -> Any:
        if verb == "delete":  # of unknown or CANCELLED ids only: both namespaces stay alike
            ctl.delete([i for i in _as_list(ids) if i != PENDING_ID] if _is_ids(ids) else ids)
            return None
        if verb == "retry":
            return type(ctl.retry(ids)).__name__  # new ids are random: compare their shape
        if verb == "times":
            return [(t.submitted is None, t.finished is None) for t in _as_list(ctl.times(ids))]
        return getattr(ctl, verb)(ids)

    _same(pair, ask)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _is_ids(value: Any) -> bool:
    return isinstance(value, str) or (
        isinstance(value, list | tuple) and all(isinstance(i, str) for i in value)
    )


def test_the_two_backends_refuse_the_same_finish(pair: Pair) -> None:
    """A worker's finish with a status that is not an outcome is refused alike."""
    for status in runq.TaskStatus:
        answers = []
        for ctl in pair:
            try:
                ctl.backend.finish("nobody", PENDING_ID, status, None)
                answers.append("ok")
            except RunqError as exc:
                answers.append(type(exc).__name__)
        assert answers[0] == answers[1], status
