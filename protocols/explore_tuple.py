"""The ownership spec's steps written on tuples of ints, for the fast explorer.

``protocols.explore_fast`` walks the same transition system as
``protocols.explore_ownership.OwnershipSpace`` (the reference, over ``SystemSnapshot``)
with each state as nested tuples of ints (``protocols.explore_codec`` encodes and
decodes them, exactly).  This module holds the rules a Linux call and a server's exit go
through (kernel ``l4_task_new`` and ``l4_thread_schedule``, RMGR's ``get_task``,
``task_new``, ``set_task_id``, ``set_prio``, ``FreeClient``, the task server's allocate,
create, free, free2, kill and reclaim), each a transcription of its rule in
``protocols.kernel``, ``protocols.rmgr``, ``protocols.rmgr_whatifs``,
``protocols.task_server``, ``protocols.task_server_harness`` and ``protocols.l4linux``,
whose docstrings give the rules and their sources.  ``tests/test_explore_fast.py``
holds the two equal.

A state is ``(K, owners, versions, handed, used, reset, TS, exit_events, LX)``:
``K`` one row ``(chief, active, version, mcp, pager, eip, esp, prio)`` per task number;
RMGR's books as they are; ``TS`` the task server's records ``(version, owner, state,
terminating)`` for the numbers it manages, in order (None without a live task server);
``LX`` per live L4Linux server ``(me, processes, slots, cache, retired, next_pid)`` with a
process ``(pid, task, parent, zombie, status)``.  A thread id is one int
(``explore_codec.pack``).
"""

from __future__ import annotations

from typing import Any, Final

from protocols import kernel, l4linux, rmgr
from protocols import task_server as ts
from protocols.editions import Edition, Fix
from protocols.explore_codec import State, tid
from protocols.ids import RMGR_TASK

__all__ = ["World", "fix_flags"]

C, A, V, M, P, E, S, PR = range(8)
FREE: Final = rmgr.FREE
NO_OWNER: Final = ts.NO_OWNER
ST_FREE, ST_ALLOCATED, ST_CHIEF, ST_RESERVED = range(4)
EL4: Final = l4linux.EIP_L4LINUX


def _code_of(owner: int) -> int:
    return 0 if owner == FREE else 1 if owner == rmgr.RESERVED else owner


def _holder(task: int) -> int:
    b = task & 255
    return FREE if b == 0 else rmgr.RESERVED if b == 1 else b


class World:
    """Scratch copies of a tuple state's tables while one step runs (cf. the reference's
    ``_World`` classes); ``freeze`` gives the state after."""

    __slots__ = (
        "c",
        "exits",
        "handed",
        "k",
        "lx",
        "own",
        "reset",
        "ts",
        "used",
        "ver",
    )

    def __init__(self, s: State, c: Any) -> None:
        self.k: list[tuple[int, ...]] = list(s[0])
        self.own: list[int] = list(s[1])
        self.ver: list[int] = list(s[2])
        self.handed: frozenset[int] = s[3]
        self.used: tuple[int, ...] = s[4]
        self.reset: frozenset[int] = s[5]
        self.ts: list[tuple[int, int, int, int]] | None = None if s[6] is None else list(s[6])
        self.exits: int = s[7]
        self.lx: list[tuple[Any, ...]] = list(s[8])
        self.c = c
        """The space's constants (``explore_fast.FastOwnershipSpace``)."""

    def freeze(self) -> State:
        self._drop_dead()
        return (
            tuple(self.k),
            tuple(self.own),
            tuple(self.ver),
            self.handed,
            self.used,
            self.reset,
            None if self.ts is None else tuple(self.ts),
            self.exits,
            tuple(self.lx),
        )

    def _drop_dead(self) -> None:
        k = self.k
        self.lx = [x for x in self.lx if k[x[0]][A] and k[x[0]][E] == EL4 and k[x[0]][V] == 1]
        me = self.c.ts_me
        if self.ts is not None:
            row = k[me]
            if not (row[A] and row[E] == ts.EIP_TASK_SERVER and row[V] == 1):
                self.ts = None

    # -- the kernel -----------------------------------------------------------------

    def _doomed(self, n: int) -> set[int]:
        k = self.k
        if not any(row[C] == n and row[A] for row in k):
            return {n}  # no active task under n (the usual case): only n dies
        below: dict[int, list[int]] = {}
        for m, row in enumerate(k):
            if m and row[C] != m:
                below.setdefault(row[C], []).append(m)
        killed = {n}
        frontier = [n]
        while frontier:
            for child in below.get(frontier.pop(), ()):
                if k[child][A] and child not in killed:
                    killed.add(child)
                    frontier.append(child)
        return killed

    def _delete(self, caller: int, n: int, killed: set[int]) -> None:
        k = self.k
        for m, row in enumerate(k):
            if m in killed:
                k[m] = (row[C] if m == n else caller, 0, row[V], 0, 0, 0, 0, 0)
            elif row[C] in killed and m:
                k[m] = (caller, *row[1:])

    def task_new_nil(self, caller: int, n: int, heir: int) -> bool:
        """``l4_task_new(n, heir, nil pager)`` by ``caller``: whether it was done."""
        k = self.k
        if n == 0 or n >= len(k) or k[n][C] != caller:
            return False
        active = k[n][A]
        gone = self._doomed(n) if active else set()
        exists = heir < len(k) and k[heir][A] and heir not in gone
        if not exists and self.c.fix_task_new:
            return False
        if active:
            self._delete(caller, n, gone)
        if not exists:
            return False
        k[n] = (heir, *k[n][1:])
        return True

    def task_new(self, caller: int, dest: int, mcp: int, pager: int, eip: int, esp: int) -> bool:
        """``l4_task_new(dest, mcp, esp, eip, pager)`` by ``caller``: whether it was done."""
        k = self.k
        n = dest & 2047
        if n == 0 or n >= len(k) or k[n][C] != caller:
            return False
        creator = k[caller]
        if k[n][A]:
            self._delete(caller, n, self._doomed(n))
        k[n] = (caller, 1, dest >> 18, min(creator[M], mcp), pager, eip, esp, creator[PR])
        return True

    def schedule(self, caller: int, dest: int, prio: int) -> int:
        """``l4_thread_schedule``: the old priority, or -1."""
        k = self.k
        n = dest & 2047
        if (dest >> 11) & 127 or n >= len(k) or not k[n][A] or k[n][V] != dest >> 18:
            return -1
        old = k[n][PR]
        if prio < 0:
            return old
        if prio > kernel.MAX_MCP or prio > k[caller][M]:
            return -1
        k[n] = (*k[n][:PR], prio)
        return old

    # -- RMGR -----------------------------------------------------------------------

    def _reserve(self, n: int, caller: int) -> int | None:
        """1 held already, 2 reserved now, None refused."""
        me = caller & 255
        held = _code_of(self.own[n])
        if held == me:
            return 1
        if held != 0:
            return None
        if self.used[me] >= (0 if me in self.reset else self.c.quota):
            return None
        self.own[n] = _holder(caller)
        u = self.used
        self.used = (*u[:me], u[me] + 1, *u[me + 1 :])
        return 2

    def _refused(self, n: int, caller: int, reserved: int) -> None:
        if reserved == 1 and self.c.fix_refusal:
            return
        if _code_of(self.own[n]) in (caller & 255, 0):
            self.own[n] = FREE

    def get_task(self, sender: int, n: int) -> bool:
        """RMGR's ``get_task(n)`` by ``sender`` (a packed id; lthread 0)."""
        if not 0 <= n < len(self.own):
            return False
        caller = sender & 2047
        reserved = self._reserve(n, caller)
        if reserved is None:
            return False
        if self.task_new_nil(RMGR_TASK, n, caller):
            return True
        self._refused(n, caller, reserved)
        return False

    def rmgr_task_new(self, caller: int, dest: int, mcp: int, eip: int, pager: int) -> bool:
        """RMGR's ``task_new`` for ``caller`` (non-nil pager, mcp in range)."""
        n = dest & 2047
        reserved = self._reserve(n, caller)
        if reserved is None:
            return False
        mcp = min(mcp, 0 if caller & 255 in self.reset else kernel.MAX_MCP)
        if not self.task_new(RMGR_TASK, dest, mcp, pager, eip, 0):
            self._refused(n, caller, reserved)
            return False
        v = self.ver
        v[n] = dest >> 18
        self.reset = self.reset | {n & 255}
        return True

    def set_task_id(self, caller: int, task: int) -> None:
        n = task & 2047
        if _code_of(self.own[n]) != caller:
            return
        if n < 256:
            self.reset = self.reset - {n}
            u = self.used
            self.used = (*u[:n], 0, *u[n + 1 :])

    def set_prio(self, caller: int, task: int, prio: int) -> None:
        if self.schedule(RMGR_TASK, task, -1) < 0:
            return
        if (0 if caller & 255 in self.reset else kernel.MAX_MCP) < prio:
            return
        self.schedule(RMGR_TASK, task, prio)

    def _free_one(self, n: int) -> bool:
        saved = list(self.k)
        if not self.task_new_nil(RMGR_TASK, n, RMGR_TASK):
            self.k = saved
            return False
        self.own[n] = FREE
        self.handed = self.handed - {n}
        return True

    def free_task(self, sender: int, n: int) -> bool:
        """RMGR's ``free_task(n)`` by ``sender`` (a packed id)."""
        if not 0 <= n < len(self.own):
            return False
        caller = sender & 2047
        if _code_of(self.own[n]) not in (caller & 255, 0):
            return False
        if self.c.fix_free_task and self.own[n] != FREE:
            saved = list(self.k)
            if not self.task_new_nil(RMGR_TASK, n, RMGR_TASK):
                self.k = saved
                return False
        self.own[n] = FREE
        return True

    def free_client(self, caller: int, owner: int) -> bool:
        own = self.own
        if not 5 <= owner < len(own) or own[owner] != RMGR_TASK:
            return False
        trusted = self.c.trusted
        if caller not in trusted and (caller != owner or trusted):
            return False
        if not self._free_one(owner):
            return False
        for n in [n for n, o in enumerate(own) if o == owner]:
            self._free_one(n)
        return True

    # -- the task server ------------------------------------------------------------

    def ts_alive(self) -> bool:
        return self.ts is not None and bool(self.k[self.c.ts_me][A])

    def _ts_id(self) -> int:
        me = self.c.ts_me
        return tid(me, self.k[me][V])

    def _record(self, n: int) -> tuple[int, int, int, int] | None:
        i = n - self.c.ts_first
        assert self.ts is not None
        return self.ts[i] if 0 <= i < len(self.ts) else None

    def _put(self, n: int, rec: tuple[int, int, int, int]) -> None:
        assert self.ts is not None
        self.ts[n - self.c.ts_first] = rec

    def _grants(self, n: int) -> bool:
        return self.get_task(self._ts_id(), n)

    def _set_task(self, n: int, chief: int) -> None:
        k = self.k
        if k[n][A]:
            below: dict[int, list[int]] = {}
            for m, row in enumerate(k):
                if m and row[C] != m:
                    below.setdefault(row[C], []).append(m)
            clan: list[int] = []
            frontier = [n]
            while frontier:
                for child in below.get(frontier.pop(), ()):
                    clan.append(child)
                    frontier.append(child)
            for m in clan:
                k[m] = (RMGR_TASK, 0, k[m][V], 0, 0, 0, 0, 0)
        k[n] = (chief, 0, k[n][V], 0, 0, 0, 0, 0)
        self.own[n] = self.c.ts_me

    def allocate(self, caller: int, chief: bool) -> int | None:
        """allocate / allocate2: the packed id handed out, or None."""
        assert self.ts is not None
        i = next((i for i, rec in enumerate(self.ts) if rec[2] == ST_FREE), -1)
        if i < 0:
            return None
        rec = self.ts[i]
        n = self.c.ts_first + i
        v = rec[0]
        new = v - v % ts.VERSION_LOW + (v + 1) % ts.VERSION_LOW
        self.ts[i] = (new, caller, ST_CHIEF if chief else ST_ALLOCATED, rec[3])
        if chief:
            if not self._grants(n):
                return None
            self._set_task(n, caller)
        return tid(n, new)

    def create(
        self, caller: int, task: int, eip: int, pager: int, prio: int, named: bool = True
    ) -> bool:
        """create, mcp 255; ``named``: with a resource name (L4Linux's), so RMGR's
        ``set_task_id`` follows."""
        n = task & 2047
        rec = self._record(n)
        if rec is None or rec[2] == ST_FREE or rec[1] != caller or tid(n, rec[0]) != task:
            return False
        if rec[3]:
            return False
        me = self.c.ts_me
        if not self.rmgr_task_new(me, task, kernel.MAX_MCP, eip, pager):
            return False
        if named:
            self.set_task_id(me, task)
        self.set_prio(me, task, prio)
        return True

    def free(self, caller: int, n: int, back: bool = False) -> bool:
        rec = self._record(n)
        if rec is None or rec[1] != caller or rec[2] == ST_FREE:
            return False
        if self.c.fix_free and rec[2] == ST_CHIEF and not back:
            return False
        self._put(n, (rec[0], NO_OWNER, ST_FREE, rec[3]))
        return True

    def free2(self, caller: int, n: int) -> bool:
        back = self.task_new_nil(self.c.ts_me, n, RMGR_TASK)
        return self.free(caller, n, back)

    def kill(self, caller: int, task: int, free: bool) -> bool:
        """kill without events (the explored task server runs without ``-e``)."""
        n = task & 2047
        rec = self._record(n)
        if rec is None or rec[2] == ST_FREE or rec[3]:
            return False
        if not (caller in (rec[1], NO_OWNER, n) or rec[1] == NO_OWNER):
            return False
        if self._grants(n):
            self._set_task(n, RMGR_TASK)
        elif not (self.c.fix_kill and self.task_new_nil(self.c.ts_me, n, RMGR_TASK)):
            return False
        if rec[2] == ST_CHIEF:
            rec = (rec[0], rec[1], ST_ALLOCATED, rec[3])
            self._put(n, rec)
        if free:
            self._put(n, (rec[0], NO_OWNER, ST_FREE, rec[3]))
        return True

    def reclaim(self, owner: int) -> None:
        assert self.ts is not None
        first = self.c.ts_first
        count = len(self.ts)
        stack = [(owner, 0)]
        while stack:
            owner, start = stack[-1]
            nxt = None
            for i in range(start, count):
                rec = self.ts[i]
                if rec[2] != ST_FREE and rec[1] == owner:
                    nxt = i
                    break
            if nxt is None:
                stack.pop()
                continue
            stack[-1] = (owner, nxt + 1)
            child = self.ts[nxt]
            if self.kill(owner, tid(first + nxt, child[0]), True):
                stack.append((first + nxt, 0))

    def kill_recursive(self, caller: int, task: int) -> bool:
        if not self.kill(caller, task, True):
            return False
        self.reclaim(task & 2047)
        return True

    def exit(self, caller: int) -> bool:
        """The task server's ``exit`` by task number ``caller``."""
        me = tid(caller, self.k[caller][V])
        rec = self._record(caller)
        if rec is not None and rec[3]:
            return False
        return self.kill_recursive(caller, me)

    def exit_event(self, dead: int) -> None:
        """The harness's exit event for a client the task server does not manage."""
        if self.free_client(self.c.ts_me, dead):
            self.reclaim(dead)


def fix_flags(edition: Edition) -> dict[str, bool]:
    """The fixes the tuple rules read, by attribute name."""
    return {
        "fix_task_new": edition.has(Fix.TASK_NEW_DELETES_BEFORE_CHECKING_CHIEF),
        "fix_refusal": edition.has(Fix.RMGR_REFUSAL_RELEASES_HELD_NUMBER),
        "fix_free": edition.has(Fix.FREE_LEAVES_CHIEF_WITH_CLIENT),
        "fix_free_task": edition.has(Fix.FREE_TASK_LEAVES_CHIEF),
        "fix_kill": edition.has(Fix.KILL_NEEDS_RMGR_AS_CHIEF),
        "fix_cache": edition.has(Fix.TASK_CACHE_REUSES_OLD_ID),
    }
