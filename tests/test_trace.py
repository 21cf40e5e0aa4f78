"""The trace container (protocols.trace.Trace): order, sequence numbers, thread safety."""

from __future__ import annotations

import threading

from protocols.ids import ThreadId
from protocols.trace import IpcCall, SpaceSwitch, Trace, Work


def test_events_are_typed_and_numbered_in_recording_order() -> None:
    trace = Trace()
    trace.record(IpcCall, src=ThreadId(5), dst=ThreadId(6), message="m")
    trace.record(SpaceSwitch, src=5, dst=6)
    assert trace.events() == (
        IpcCall(seq=0, src=ThreadId(5), dst=ThreadId(6), message="m"),
        SpaceSwitch(seq=1, src=5, dst=6),
    )
    mark = trace.mark()
    trace.record(Work, task=6, unit="getpid")
    assert trace.since(mark) == (Work(seq=2, task=6, unit="getpid"),)
    assert len(trace) == 3 and list(trace) == list(trace.events())
    assert trace.events()[0] is trace.events()[0]  # built once


def test_a_disabled_trace_records_nothing() -> None:
    trace = Trace(enabled=False)
    trace.record(Work, task=6, unit="getpid")
    assert len(trace) == 0 and trace.events() == ()


def test_concurrent_recording_and_reading_loses_nothing() -> None:
    trace = Trace()
    writers, per_writer = 4, 2000
    snapshots: list[int] = []

    def write(task: int) -> None:
        for _ in range(per_writer):
            trace.record(Work, task=task, unit="u")

    def read() -> None:
        for _ in range(50):
            events = trace.events()
            assert [e.seq for e in events] == list(range(len(events)))
            snapshots.append(len(events))

    threads = [threading.Thread(target=write, args=(t,)) for t in range(writers)]
    threads.append(threading.Thread(target=read))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    events = trace.events()
    assert [e.seq for e in events] == list(range(writers * per_writer))
    assert sorted(sum(1 for e in events if e.task == t) for t in range(writers)) == [per_writer] * 4  # type: ignore[union-attr]
    assert snapshots == sorted(snapshots)
