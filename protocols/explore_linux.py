"""An L4Linux server's calls on tuple states: ``protocols.l4linux``'s rules for the fast
explorer (``protocols.explore_fast``), over ``protocols.explore_tuple.World``.

Each function is the rule of the same name in ``protocols.l4linux`` (whose docstring
gives the strategies and their sources), with the task server, RMGR and the kernel
reached through ``World``; ``tests/test_explore_fast.py`` holds them equal.
"""

from __future__ import annotations

from typing import Any

from protocols import kernel, l4linux
from protocols.explore_codec import tid
from protocols.explore_tuple import World
from protocols.l4linux import Strategy

__all__ = ["call", "shutdown"]

_EIP: Any = l4linux.EIP_PROCESS
_VERSIONS = 1 << 14


class _Server:
    """One server's tables while a call runs (the reference's ``_World.lx``)."""

    __slots__ = ("cache", "id", "me", "next_pid", "procs", "retired", "slots", "w")

    def __init__(self, w: World, x: tuple[Any, ...]) -> None:
        self.w = w
        self.me: int = x[0]
        self.procs: list[tuple[int, int, int, int, int]] = list(x[1])
        self.slots: tuple[int, ...] = x[2]
        self.cache: tuple[int, ...] = x[3]
        self.retired: frozenset[int] = x[4]
        self.next_pid: int = x[5]
        self.id = tid(self.me, w.k[self.me][2])

    def tuple(self) -> tuple[Any, ...]:
        return (self.me, tuple(self.procs), self.slots, self.cache, self.retired, self.next_pid)

    # -- the strategies ---------------------------------------------------------------

    def acquire(self) -> int | None:
        w, strategy = self.w, self.w.c.strategy
        if strategy is Strategy.CHIEF_CACHE and self.cache:
            free = self.cache[0]
            given = free
            if w.c.fix_cache:
                given = (free & 0x3FFFF) | (((free >> 18) + 1) % _VERSIONS) << 18
            i = self.slots.index(free)
            self.slots = (*self.slots[:i], given, *self.slots[i + 1 :])
            self.cache = self.cache[1:]
            return given
        if not w.ts_alive():
            return None
        return w.allocate(self.me, strategy is not Strategy.CLASSIC)

    def start(self, task: int) -> bool:
        w = self.w
        if w.c.strategy is Strategy.CLASSIC:
            if not w.ts_alive():
                return False
            if w.create(self.me, task, _EIP, self.id, l4linux.PRIO_USER_PROCESS):
                return True
            w.free(self.me, task & 2047)
            return False
        if not w.task_new(self.me, task, kernel.MAX_MCP, self.id, _EIP, 0):
            return False
        if w.schedule(self.me, task, -1) >= 0:
            w.schedule(self.me, task, l4linux.PRIO_SERVER_PROC)
        return True

    def stop(self, task: int) -> None:
        w = self.w
        n = task & 2047
        if w.c.strategy is Strategy.CLASSIC:
            if w.ts_alive() and w.kill(self.me, task, False):
                w.free(self.me, n)
            return
        if not w.task_new_nil(self.me, n, self.me):
            return
        if w.c.strategy is Strategy.CHIEF_CACHE and task in self.slots and task not in self.cache:
            cache = self.cache
            self.cache = tuple(t for t in self.slots if t in cache or t == task)
            return
        ts_alive = w.ts is not None
        heir = w.c.ts_me if ts_alive else 0
        if w.task_new_nil(self.me, n, heir) and w.ts_alive():
            w.free2(self.me, n)

    # -- the calls --------------------------------------------------------------------

    def spawn(self, parent: int) -> None:
        got = self.acquire()
        if got is None or not self.start(got):
            return
        pid = self.next_pid
        self.procs.append((pid, got, parent, 0, 0))
        self.next_pid = pid + 1

    def end(self, i: int, status: int) -> None:
        pid, task, parent, _, _ = self.procs[i]
        self.stop(task)
        self.retired = self.retired | {task}
        self.procs[i] = (pid, task, parent, 1, status)
        for j, p in enumerate(self.procs):
            if p[2] == pid:
                self.procs[j] = (p[0], p[1], 1, p[3], p[4])


def call(state: tuple[Any, ...], c: Any, si: int, kind: int, sender: int, arg: int) -> Any:
    """Server ``si`` (index in LX) gets a call from its process task ``sender``: ``kind``
    0 Fork, 1 Exit(0), 2 Kill(``arg``), 3 Wait(-1).  The state after (frozen)."""
    w = World(state, c)
    x = _Server(w, w.lx[si])
    procs = x.procs
    me = -1
    for i, p in enumerate(procs):
        if not p[3] and p[1] == sender:
            me = i
            break
    assert me >= 0
    if kind == 0:
        x.spawn(procs[me][0])
    elif kind == 1:
        x.end(me, 0)
    elif kind == 2:
        for i, p in enumerate(procs):
            if p[0] == arg:
                if not p[3]:
                    x.end(i, l4linux.KILLED_STATUS)
                break
    else:
        pid = procs[me][0]
        for i, p in enumerate(procs):
            if p[2] == pid and p[3]:
                del procs[i]
                break
    w.lx[si] = x.tuple()
    return w.freeze()


def shutdown(state: tuple[Any, ...], c: Any, si: int) -> Any:
    """Server ``si`` exits as a client: the task server answers ``ENOTFOUND`` (it does not
    manage boot modules), so the harness's exit event reclaims (``l4linux.shutdown``)."""
    w = World(state, c)
    me = w.lx[si][0]
    assert w.ts_alive() and not c.ts_first <= me < c.ts_first + len(w.ts or ())
    w.exit_event(me)
    return w.freeze()
