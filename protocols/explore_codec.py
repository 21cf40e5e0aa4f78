"""Tuple states of the ownership spec and back: ``encode`` / ``decode`` (exact both ways).

The layout is described in ``protocols.explore_tuple``, whose rules step these states.
"""

from __future__ import annotations

from typing import Any, Final

from protocols import kernel, l4linux, rmgr
from protocols import task_server as ts
from protocols.editions import Edition
from protocols.ids import ThreadId
from protocols.l4linux import LinuxState, Process, ProcState
from protocols.snapshot import SystemSnapshot

__all__ = ["State", "decode", "encode", "pack", "tid", "unpack"]

State = tuple[Any, ...]
C, A, V, M, P, E, S, PR = range(8)
NO_OWNER: Final = ts.NO_OWNER
_STATES: Final = (
    ts.TaskState.FREE,
    ts.TaskState.ALLOCATED,
    ts.TaskState.CHIEF,
    ts.TaskState.RESERVED,
)
_STATE_CODE: Final = {s: i for i, s in enumerate(_STATES)}


def pack(t: ThreadId) -> int:
    """A thread id as one int: task | lthread << 11 | version << 18 (nil is 0)."""
    return t.task | t.lthread << 11 | t.version << 18


def unpack(p: int) -> ThreadId:
    return ThreadId(p & 2047, (p >> 11) & 127, p >> 18)


def tid(n: int, version: int) -> int:
    return n | version << 18


def encode(w: SystemSnapshot) -> State:
    """The tuple state of a snapshot (exact: ``decode`` gives it back)."""
    k = tuple(
        (e.chief, int(e.active), e.version, e.mcp, pack(e.pager), e.eip, e.esp, e.prio)
        for e in w.kernel.tasks
    )
    r = w.rmgr
    tsv = w.task_server
    records = None
    exits = 0
    if tsv is not None:
        assert not tsv.events and not tsv.anykill and tsv.master == NO_OWNER
        assert all(rec.id.lthread == 0 for rec in tsv.records)
        records = tuple(
            (rec.id.version, rec.owner, _STATE_CODE[rec.state], int(rec.terminating))
            for rec in tsv.records
        )
        exits = tsv.exit_events
    lx = tuple(
        (
            s.me,
            tuple(
                (p.pid, pack(p.task), p.parent, int(p.state is ProcState.ZOMBIE), p.status)
                for p in s.processes
            ),
            tuple(pack(t) for t in s.slots),
            tuple(pack(t) for t in s.cache),
            frozenset(pack(t) for t in s.retired),
            s.next_pid,
        )
        for s in w.linux
    )
    return (k, r.owners, r.versions, r.handed, r.used, r.reset, records, exits, lx)


def decode(
    s: State,
    *,
    ts_me: int | None,
    ts_first: int,
    quota: int,
    trusted: frozenset[int],
    strategy: l4linux.Strategy,
    cache_size: int,
    edition: Edition,
) -> SystemSnapshot:
    """The snapshot of a tuple state (the constants are the space's)."""
    k, owners, versions, handed, used, reset, records, exits, lx = s
    ks = kernel.KernelState(
        tasks=tuple(
            kernel.TaskEntry(
                number=n,
                chief=row[C],
                active=bool(row[A]),
                version=row[V],
                mcp=row[M],
                pager=unpack(row[P]),
                eip=row[E],
                esp=row[S],
                prio=row[PR],
            )
            for n, row in enumerate(k)
        )
    )
    rs = rmgr.RmgrState(
        owners=owners,
        versions=versions,
        quota=quota,
        trusted=trusted,
        handed=handed,
        used=used,
        reset=reset,
    )
    tsv = None
    if records is not None:
        assert ts_me is not None
        tsv = ts.TsState(
            me=ts_me,
            records=tuple(
                ts.TsRecord(
                    number=ts_first + i,
                    id=ThreadId(ts_first + i, 0, v),
                    owner=o,
                    state=_STATES[st],
                    terminating=bool(term),
                )
                for i, (v, o, st, term) in enumerate(records)
            ),
            exit_events=exits,
        )
    servers = tuple(
        LinuxState(
            me=me,
            strategy=strategy,
            cache_size=cache_size if strategy.caches else 0,
            processes=tuple(
                Process(
                    pid=pid,
                    task=unpack(t),
                    parent=parent,
                    state=ProcState.ZOMBIE if z else ProcState.RUNNING,
                    status=status,
                )
                for pid, t, parent, z, status in procs
            ),
            slots=tuple(unpack(t) for t in slots),
            cache=tuple(unpack(t) for t in cache),
            retired=frozenset(unpack(t) for t in retired),
            next_pid=next_pid,
        )
        for me, procs, slots, cache, retired, next_pid in lx
    )
    return SystemSnapshot(kernel=ks, rmgr=rs, task_server=tsv, linux=servers, edition=edition)
