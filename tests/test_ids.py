"""protocols.ids: the L4 V2 x86 id layout."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.ids import (
    LTHREADS_PER_TASK,
    NIL_ID,
    TASK_COUNT,
    VERSION_COUNT,
    ThreadId,
    task_id,
)


def test_layout_sizes_follow_the_v2_x86_bit_fields() -> None:
    # task:11, lthread:7, version_low:10 + version_high:4
    assert (TASK_COUNT, LTHREADS_PER_TASK, VERSION_COUNT) == (2**11, 2**7, 2**14)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"task": TASK_COUNT}, ValueError),
        ({"task": -1}, ValueError),
        ({"task": 3, "lthread": LTHREADS_PER_TASK}, ValueError),
        ({"task": 3, "version": VERSION_COUNT}, ValueError),
        ({"task": "3"}, TypeError),
        ({"task": True}, TypeError),
    ],
)
def test_out_of_range_fields_are_rejected_on_construction(
    fields: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        ThreadId(**fields)  # type: ignore[arg-type]


def test_ids_are_frozen_values() -> None:
    tid = ThreadId(17, 0, 3)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        tid.task = 5  # type: ignore[misc]
    assert tid == task_id(17, 3) and hash(tid) == hash(task_id(17, 3))


def test_repr_is_readable_and_nil_is_named() -> None:
    assert repr(ThreadId(17, 0, 3)) == "t17.0v3"
    assert repr(NIL_ID) == "nil" and NIL_ID.is_nil and not ThreadId(1).is_nil


@given(
    st.integers(0, TASK_COUNT - 1),
    st.integers(0, LTHREADS_PER_TASK - 1),
    st.integers(0, VERSION_COUNT - 1),
)
def test_parse_inverts_repr(task: int, lthread: int, version: int) -> None:
    tid = ThreadId(task, lthread, version)
    assert ThreadId.parse(repr(tid)) == tid


@pytest.mark.parametrize("text", ["", "t1", "x1.0v0", "t1.0", "t99999.0v0", "tA.0v0"])
def test_parse_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        ThreadId.parse(text)


def test_next_version_wraps_at_14_bits() -> None:
    assert ThreadId(9, 0, VERSION_COUNT - 1).next_version() == ThreadId(9, 0, 0)
    assert ThreadId(9, 5, 2).task_id == ThreadId(9, 0, 2)
