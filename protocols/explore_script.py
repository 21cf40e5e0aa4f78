"""The misbehaving boot module's calls on tuple states, for the fast explorer.

``OwnershipSpace._script_alphabet`` (``protocols.explore_ownership``) on the tuple states
of ``protocols.explore_codec``, in the same order, each call stepped by
``protocols.explore_tuple.World`` as ``protocols.ownership.step`` routes it (a call to a
task that is not alive changes nothing), with the transition invariants 2 and 8 of
``protocols.invariants`` (``task_new_succeeds_only_for_the_chief``,
``only_the_owner_kills_or_frees``) judged on the tuples.  Only whether one is broken is
decided here: the explorer replays a counterexample in the reference, which names it.
``tests/test_explore_fast.py`` holds the two equal.  Strategies with a task server only
(``merged`` goes through the reference).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, Final

from protocols import kernel
from protocols.explore_codec import A, C, State, V, tid
from protocols.explore_tuple import World
from protocols.ids import RMGR_TASK, SIGMA0_TASK

__all__ = ["script_moves"]

_TASK_NEW: Final = "task_new_succeeds_only_for_the_chief"
_OWNER: Final = "only_the_owner_kills_or_frees"
_SIGMA0: Final = tid(SIGMA0_TASK, 0)
_VERSIONS: Final = 1 << 14
_INERT: Final = (None, False)
Call = Callable[[World], bool]
"""One call on scratch tables: whether it succeeded (error OK, or the kernel did it)."""


def _ts_owner_rule(s: State, c: Any, me: int, n: int, self_ok: bool) -> bool:
    """Invariant 8 for a task-server kill or free of ``n`` by ``me`` that succeeded."""
    recs = s[6]
    i = n - c.ts_first
    rec = recs[i] if recs is not None and 0 <= i < len(recs) else None
    if self_ok and rec is not None and rec[1] == -1:
        return True
    return rec is not None and (rec[1] == me or (self_ok and me == n))


def _allocated(me: int, chief: bool, w: World) -> bool:
    return w.allocate(me, chief) is not None


def script_moves(s: State, c: Any) -> Iterator[tuple[State | None, bool]]:
    """Each call of the alphabet: (state after, or None if nothing changed; whether a
    checked transition invariant broke)."""
    k = s[0]
    me = c.ref.script
    my_id = tid(me, k[me][V])
    ts_me = c.ts_me
    checked = c.ref.invariants
    owner_checked = _OWNER in checked
    task_new_checked = _TASK_NEW in checked

    def run(call: Call, ts_call: bool = False) -> tuple[State | None, bool]:
        w = World(s, c)
        if ts_call and not w.ts_alive():
            return None, False
        ok = call(w)
        after = w.freeze()
        return (None if after == s else after), ok

    def ts_call(call: Call, n: int = -1, self_ok: bool = False) -> tuple[State | None, bool]:
        after, ok = run(call, True)
        bad = ok and n >= 0 and owner_checked and not _ts_owner_rule(s, c, me, n, self_ok)
        return after, bad

    def task_new(call: Call, n: int) -> tuple[State | None, bool]:
        w = World(s, c)
        ok = call(w)
        table = tuple(w.k)
        after = w.freeze()
        bad = task_new_checked and (table != k if not ok else k[n][C] != me)
        return (None if after == s else after), bad

    # A guard below is a refusal read off ``s`` before any table is copied: the call
    # changes nothing and succeeds at nothing (the rules in protocols.explore_tuple).
    recs = s[6]
    alive = recs is not None and bool(k[ts_me][A])
    first = c.ts_first
    own = s[1]

    def record(n: int) -> tuple[int, int, int, int] | None:
        i = n - first
        return recs[i] if recs is not None and 0 <= i < len(recs) else None

    yield (
        ts_call(partial(_allocated, me, False))
        if alive and any(r[2] == 0 for r in recs or ())
        else _INERT
    )
    yield (
        ts_call(partial(_allocated, me, True))
        if alive and any(r[2] == 0 for r in recs or ())
        else _INERT
    )
    yield ts_call(partial(World.exit, caller=me)) if alive and record(me) is not None else _INERT
    for n in c.ref.pool:
        v = k[n][V]
        now = tid(n, v)
        new = tid(n, (v + 1) % _VERSIONS)
        rec = record(n)
        mine = alive and rec is not None and rec[2] != 0 and rec[1] == me
        if mine and rec is not None and rec[0] == v and not rec[3]:
            yield ts_call(
                partial(
                    World.create, caller=me, task=now, eip=0, pager=_SIGMA0, prio=0, named=False
                )
            )
        else:
            yield _INERT
        yield ts_call(partial(World.free, caller=me, n=n), n) if mine else _INERT
        if mine or (alive and k[n][C] == ts_me):
            yield ts_call(partial(World.free2, caller=me, n=n), n)
        else:
            yield _INERT
        killable = (
            alive
            and rec is not None
            and rec[2] != 0
            and not rec[3]
            and (me in (rec[1], -1, n) or rec[1] == -1)
        )
        if killable:
            yield ts_call(partial(World.kill, caller=me, task=now, free=False), n, True)
            yield ts_call(partial(World.kill_recursive, caller=me, task=now), n, True)
        else:
            yield _INERT
            yield _INERT
        held = own[n]
        if (0 if held == -1 else 1 if held == 0 else held) in (me & 255, 0):
            yield run(partial(World.get_task, sender=my_id, n=n))[0], False
            after, ok = run(partial(World.free_task, sender=my_id, n=n))
            yield after, ok and owner_checked and held not in (-1, me)
            rmgr_new = partial(
                World.rmgr_task_new, caller=me, dest=new, mcp=kernel.MAX_MCP, eip=0, pager=_SIGMA0
            )
            yield run(rmgr_new)[0], False
        else:
            yield _INERT
            yield _INERT
            yield _INERT
        if k[n][C] == me:
            yield task_new(
                partial(
                    World.task_new,
                    caller=me,
                    dest=new,
                    mcp=kernel.MAX_MCP,
                    pager=my_id,
                    eip=0,
                    esp=0,
                ),
                n,
            )
        else:
            yield _INERT
        if k[n][C] == me:
            yield task_new(partial(World.task_new_nil, caller=me, n=n, heir=me), n)
            back = ts_me if rec is not None and rec[2] == 2 else RMGR_TASK
            yield task_new(partial(World.task_new_nil, caller=me, n=n, heir=back), n)
