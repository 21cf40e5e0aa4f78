"""More attack kinds for ``tests.adversary_machine``: what a public-API caller can forge.

Three kinds, each a list of ``(kind, sender, destination, message)``:

- ``forged value``: messages whose fields hold what the IPC path must refuse as wire
  data: an id inside an id, ``int`` and ``ThreadId`` subclasses (one whose comparison
  raises ``SystemExit``), negative and huge numbers inside ids, an ``ErrorCode`` or a
  ``bool`` where a number goes;
- ``old id``: ids of other clients' tasks under an earlier incarnation's version,
  including the one the 14-bit version wraps to (``v - 1``, ``v + 2**14 - 1`` reduced,
  the version before a wrap), against the task server, RMGR and the kernel;
- ``from a process``: a running L4Linux process, not the scripted client, takes the
  attacker's part: it kills, frees, re-creates or takes over tasks of other processes,
  the other server's cache and the client, frees everything its own server holds, and
  shuts its server down.

Every one must be refused with a typed error and change nothing, as every other attack.
"""

from __future__ import annotations

from typing import Any

from protocols import kernel, rmgr
from protocols import linux as lx
from protocols import task_server as ts
from protocols.errors import ErrorCode
from protocols.ids import NIL_ID, RMGR_TASK, VERSION_COUNT, ThreadId, task_id
from protocols.l4linux import ProcState

__all__ = ["EXTRA_KINDS", "SenderAttack", "extra_attacks"]

EXTRA_KINDS = ("forged value", "old id", "from a process")
SenderAttack = tuple[str, ThreadId, ThreadId, object]
"""(kind, sender, destination or ``NIL_ID``, message)."""


class _Int(int):
    """An ``int`` subclass: equal to a task number, but not wire data."""


class _Exiting(int):
    """An ``int`` whose comparisons raise ``SystemExit`` (it must never reach a handler)."""

    def __eq__(self, other: object) -> bool:
        raise SystemExit("forged comparison")

    def __hash__(self) -> int:
        return int.__hash__(self)

    def __lt__(self, other: object) -> bool:
        raise SystemExit("forged comparison")


class _Id(ThreadId):
    """A ``ThreadId`` subclass."""


def _raw_id(task: Any, lthread: Any = 0, version: Any = 0) -> ThreadId:
    """A ``ThreadId`` with any field values (its validators bypassed, as an attacker would)."""
    tid = object.__new__(ThreadId)
    for name, value in (("task", task), ("lthread", lthread), ("version", version)):
        object.__setattr__(tid, name, value)
    return tid


def _forged(m: Any, victim: ThreadId) -> list[tuple[ThreadId, object]]:
    from tests.adversary_machine import forge

    me, rm, tsv = m.client, task_id(RMGR_TASK), m.system.task_server
    n = victim.task
    bad_ids = [
        _raw_id(victim, 0, 0),
        _raw_id(_Int(n), 0, victim.version),
        _raw_id(_Exiting(n), 0, victim.version),
        _raw_id(n, 0, -1),
        _raw_id(n, 0, VERSION_COUNT),
        _raw_id(-n, 0, 0),
        _raw_id(n, 10**20, 0),
        _raw_id(float(n), 0, victim.version),
        _raw_id(n, 0, ErrorCode.OK),
    ]
    sub = object.__new__(_Id)
    for name in ("task", "lthread", "version"):
        object.__setattr__(sub, name, getattr(victim, name))
    bad_ids.append(sub)
    out: list[tuple[ThreadId, object]] = []
    for bad in bad_ids:
        out.append((NIL_ID, forge(kernel.TaskNew, dest=bad, mcp_or_new_chief=me)))
        out.append((rm, forge(rmgr.Free2, task=bad)))
        out.append(
            (rm, forge(rmgr.RmgrTaskNew, dest=bad, mcp_or_chief=kernel.MAX_MCP, eip=0, pager=me))
        )
        if tsv is not None:
            out.append((tsv, forge(ts.Kill, task=bad, options=ts.KillOption.FREE)))
            out.append((tsv, forge(ts.Free, task=bad)))
            out.append((tsv, forge(ts.Create, task=victim, eip=0, pager=bad)))
    for number in (_Int(n), _Exiting(n), True, ErrorCode.OK):
        out.append((rm, forge(rmgr.FreeTask, number=number)))
        out.append((rm, forge(rmgr.FreeTaskAll, owner=number)))
        out.append((rm, forge(rmgr.GetTask, number=number)))
    out.append((NIL_ID, forge(kernel.TaskNew, dest=victim, mcp_or_new_chief=_Exiting(1))))
    servers = [m.snap.kernel.tasks[s.me].id for s in m.snap.linux]
    out.extend((s, forge(lx.Kill, pid=_Exiting(1))) for s in servers)
    out.extend((s, forge(lx.Wait, pid=_Int(-1))) for s in servers)
    return out


def _old_ids(tid: ThreadId) -> list[ThreadId]:
    """Earlier incarnations' ids of ``tid``: the last ones and the one before a wrap."""
    versions = {(tid.version - k) % VERSION_COUNT for k in (1, 2, VERSION_COUNT - 1)}
    versions.add(VERSION_COUNT - 1)
    return [tid.with_version(v) for v in sorted(versions) if v != tid.version]


def _on_old(m: Any, old: ThreadId) -> list[tuple[ThreadId, object]]:
    me, rm, tsv = m.client, task_id(RMGR_TASK), m.system.task_server
    out: list[tuple[ThreadId, object]] = [
        (NIL_ID, kernel.TaskNew(dest=old, mcp_or_new_chief=me)),
        (NIL_ID, kernel.TaskNew(dest=old, mcp_or_new_chief=task_id(1))),
        (rm, rmgr.Free2(task=old)),
        (rm, rmgr.RmgrTaskNew(dest=old, mcp_or_chief=kernel.MAX_MCP, eip=0, pager=me)),
    ]
    if tsv is not None:
        out += [
            (tsv, ts.Kill(task=old, options=ts.KillOption.FREE)),
            (tsv, ts.KillRecursive(task=old)),
            (tsv, ts.Free(task=old)),
            (tsv, ts.Free2(task=old)),
            (tsv, ts.Create(task=old, eip=0, pager=me)),
            (tsv, ts.Owner(task=old)),
        ]
    return out


def _from_process(m: Any, proc: ThreadId, server: ThreadId) -> list[tuple[ThreadId, object]]:
    """What process ``proc`` of ``server`` has no right to do."""
    snap, rm, tsv = m.snap, task_id(RMGR_TASK), m.system.task_server
    others = [
        t
        for s in snap.linux
        for t in (*(p.task for p in s.processes if p.state is ProcState.RUNNING), *s.cache)
        if t.task != proc.task
    ]
    others += [snap.kernel.tasks[n].id for n in snap.tasks_of(m.client.task)]
    # An ownerless record may be killed by anyone (the interface says so): not an attack.
    others = [t for t in others if not _ownerless(snap, t)]
    out: list[tuple[ThreadId, object]] = [
        (rm, rmgr.FreeTaskAll(owner=server.task)),
        (rm, rmgr.FreeClient(owner=server.task)),
        (rm, rmgr.FreeTask(number=server.task)),
        (NIL_ID, kernel.TaskNew(dest=server, mcp_or_new_chief=proc)),
    ]
    for tid in others:
        out.append((NIL_ID, kernel.TaskNew(dest=tid, mcp_or_new_chief=proc)))
        out.append((rm, rmgr.FreeTask(number=tid.task)))
        out.append((rm, rmgr.Free2(task=tid)))
        if tsv is not None:
            out.append((tsv, ts.Kill(task=tid, options=ts.KillOption.FREE)))
            out.append((tsv, ts.Free(task=tid)))
            out.append((tsv, ts.Free2(task=tid)))
            out.append((tsv, ts.Owner(task=tid, owner=proc)))
    return out


def _ownerless(snap: Any, tid: ThreadId) -> bool:
    """Whether the task server keeps ``tid``'s number used but ownerless (``owner(nil)``)."""
    books = snap.task_server
    rec = books.record(tid.task) if books is not None else None
    return rec is not None and rec.used and rec.owner == ts.NO_OWNER


def extra_attacks(m: Any) -> list[SenderAttack]:
    """Every attack of the three kinds in the machine's current state (``m``: an
    ``AdversaryMachine``)."""
    snap, me = m.snap, m.client
    foreign = m._foreign()
    victim = foreign[0] if foreign else task_id(9)
    out: list[SenderAttack] = [("forged value", me, d, msg) for d, msg in _forged(m, victim)]
    for tid in foreign:
        if _ownerless(snap, tid):
            continue  # anyone may kill an ownerless record, under any id (the interface)
        out.extend(("old id", me, d, msg) for old in _old_ids(tid) for d, msg in _on_old(m, old))
    for s in snap.linux:
        server = snap.kernel.tasks[s.me].id
        for p in s.processes:
            alive = snap.kernel.tasks[p.task.task]
            if p.state is ProcState.RUNNING and alive.active and alive.id == p.task:
                out.extend(
                    ("from a process", p.task, d, msg)
                    for d, msg in _from_process(m, p.task, server)
                )
    return out
