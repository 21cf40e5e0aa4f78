"""The state invariants of ``protocols.invariants`` on tuple states (``explore_codec``).

Each function answers whether its invariant holds, with the same rule as the function of
the same name in ``protocols.invariants`` (whose docstring states the promises); the
fast explorer (``protocols.explore_fast``) asks them for every new state and, when one
fails, takes the name and detail of the violation from the reference on the decoded
state.  ``tests/test_explore_fast.py`` holds the two equal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from protocols import invariants
from protocols.explore_codec import A, C, State, V, tid
from protocols.ids import RMGR_TASK

__all__ = ["CHECKS", "holds"]

_FREE: Final = -1
_NO_OWNER: Final = -1
_CONFLICT: Final[tuple[int, ...]] = (0,)
_FREE_AT_RMGR: Final[tuple[int, ...]] = (1,)
_TS_RESERVED: Final[tuple[int, ...]] = (2,)


def every_task_has_exactly_one_chief(s: State, c: Any) -> bool:
    k = s[0]
    if k[0][C] != 0:
        return False
    count = len(k)
    for n in range(1, count):
        chief = k[n][C]
        if not 0 <= chief < count or chief == n:
            return False
        seen = {n}
        while chief != 0:
            if chief in seen:
                return False
            seen.add(chief)
            chief = k[chief][C]
    return True


def _record(s: State, c: Any, n: int) -> tuple[int, int, int, int] | None:
    recs = s[6]
    if recs is None:
        return None
    i = n - c.ts_first
    return recs[i] if 0 <= i < len(recs) else None


def _cachers(s: State) -> dict[int, list[int]]:
    """Per task number the servers whose cache holds it."""
    out: dict[int, list[int]] = {}
    for x in s[8]:
        for n in {t & 2047 for t in x[3]}:
            out.setdefault(n, []).append(x[0])
    return out


def _place(s: State, c: Any, n: int, cached: dict[int, list[int]] | None = None) -> tuple[int, ...]:
    """``invariants.place_of`` as a code: conflict, free, reserved, (3, owner), (4, cacher);
    ``cached``: ``_cachers(s)``, if the caller has it."""
    owner = s[1][n]
    rec = _record(s, c, n)
    has_ts = s[6] is not None
    if rec is not None and rec[1] != _NO_OWNER and owner != c.ts_me:
        return _CONFLICT
    base: tuple[int, ...]
    if owner == _FREE:
        base = _FREE_AT_RMGR
    elif has_ts and owner == c.ts_me and n != c.ts_me:
        base = _TS_RESERVED if rec is None or rec[1] == _NO_OWNER else (3, rec[1])
    else:
        base = (3, owner)
    cachers = (cached if cached is not None else _cachers(s)).get(n, ())
    if len(cachers) > 1:
        return _CONFLICT
    if cachers:
        return (4, cachers[0]) if base == (3, cachers[0]) else _CONFLICT
    return base


def every_task_is_in_exactly_one_place(s: State, c: Any) -> bool:
    k = s[0]
    running: dict[int, int] = {}
    for x in s[8]:
        for p in x[1]:
            if p[3]:
                continue
            n = p[1] & 2047
            if n in running:
                return False
            running[n] = x[0]
    cached = _cachers(s)
    for n in range(5, len(k)):
        place = _place(s, c, n, cached)
        if place == _CONFLICT:
            return False
        if place == _FREE_AT_RMGR and (k[n][A] or k[n][C] != RMGR_TASK):
            return False
        rec = _record(s, c, n)
        if rec is not None and rec[2] == 0 and (k[n][C] != RMGR_TASK or rec[3]):
            return False
        if n in running and place != (3, running[n]):
            return False
    return True


def the_owner_of_an_allocate_chief_task_is_its_chief(s: State, c: Any) -> bool:
    k = s[0]
    if s[6] is not None:
        for i, rec in enumerate(s[6]):
            if rec[2] != 2 or rec[1] == _NO_OWNER:
                continue
            if k[c.ts_first + i][C] not in (rec[1], c.ts_me):
                return False
    own = s[1]
    return all(k[n][C] in (own[n], RMGR_TASK) for n in s[3])


def cached_tasks_are_inactive_and_the_cachers(s: State, c: Any) -> bool:
    k = s[0]
    size = c.cache_size if c.strategy.caches else 0
    for x in s[8]:
        if len(x[3]) > size:
            return False
        me = x[0]
        for t in x[3]:
            n = t & 2047
            if k[n][A] or k[n][C] != me or _place(s, c, n) != (4, me):
                return False
            rec = _record(s, c, n)
            if rec is not None and rec[2] != 2:
                return False
    return True


def reused_tasks_get_a_new_version(s: State, c: Any) -> bool:
    k = s[0]
    for x in s[8]:
        retired = x[4]
        for p in x[1]:
            if p[3]:
                continue
            task = p[1]
            if task in retired:
                return False
            n = task & 2047
            if not k[n][A] or tid(n, k[n][V]) != task:
                return False
    return True


def exit_reclaims_everything(s: State, c: Any) -> bool:
    k, own = s[0], s[1]
    for n in range(5, len(own)):
        if own[n] != _FREE and not k[own[n]][A]:
            return False
    if s[6] is not None:
        for rec in s[6]:
            if rec[1] != _NO_OWNER and not k[rec[1]][A]:
                return False
    return all(k[x[0]][A] or not (x[3] or x[1]) for x in s[8])


CHECKS: Final[dict[str, Callable[[State, Any], bool]]] = {
    f.__name__: globals()[f.__name__] for f in invariants.STATE_INVARIANTS
}
"""The tuple form of each of ``protocols.invariants``' state invariants, by name (the
same list: a new invariant there without its tuple form here fails at import)."""


def holds(s: State, c: Any, names: frozenset[str]) -> bool:
    """Whether every invariant in ``names`` holds in ``s`` (``c``: the space's constants)."""
    return all(check(s, c) for name, check in CHECKS.items() if name in names)
