"""The compiled core of the fast explorer: the same search as ``explore_fast``, in C.

``protocols/_explore_core.c`` is built by ``pip install`` (``setup.py``; gcc and the
Python headers, as on a fresh machine).  It transcribes the tuple spec the fast explorer
steps (``explore_tuple``, ``explore_linux``), its invariants (``explore_checks``), its
moves in the reference's order and its canonical form (``explore_fast``), and runs the
whole breadth-first search: a visited set of 64-bit fingerprints with parent pointers, a
frontier of states packed as varints.  A counterexample is a path of move indices,
replayed in the reference space for its labels, as ``explore_fast`` does.

**What it covers.**  The strategies whose moves ``explore_fast`` computes on tuples
(classic, chief, chief+cache), with or without the scripted client
(``explore_script``), with the spec's own step, at most
``MAXT`` task numbers, ``MAXS`` servers, ``MAXP`` processes per server.  Anything else
(merged, a broken variant's step, a larger configuration) runs the Python
search; so does a search in which a state leaves what the core holds (a version beyond
8191, more retired ids than it keeps): ``explore_compiled`` then answers None and
``explore_fast`` starts over in Python, so the answer never depends on the core's limits.

**Same classes.**  The core's canonical form is the minimum, over every permutation of
the L4Linux servers' numbers, of a serialisation of the parts ``explore_fast.canonical``
reads (rows, free pool sorted, servers' processes, cache and slots, with the same fields
renamed).  ``explore_fast`` takes the minimum over the permutations of servers with
equal signatures only; both minima are functions of the orbit of a state under renaming
the servers (a signature is unchanged by renaming), so they name the same classes: same
state counts, up to fingerprint collisions (64 bits in both, stated in every result).

**Sharded.**  ``CompiledOwnershipSpace`` is a ``protocols.explore_walk.Walk`` whose states
are the core's own bytes (its moves, fingerprints and verdicts computed in C), so
``--workers`` and ``--ray`` expand states in the core too; a state that leaves what the
core holds raises there (``NotImplementedError``: run with ``--engine python``).

**Held equal.**  ``tests/test_explore_core.py`` compares the core's successors and
verdicts with ``FastOwnershipSpace``'s state by state, and whole searches with the
reference explorer's counts and counterexamples.  Its constants are the protocol
modules' (checked here at import: a core built from an older source is not used).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from protocols import kernel, l4linux, rmgr
from protocols import task_server as ts
from protocols.explore_checks import CHECKS
from protocols.explore_codec import State
from protocols.explore_ownership import EIP_SCRIPT
from protocols.ids import FIRST_USER_TASK, RMGR_TASK, SIGMA0_TASK
from protocols.l4linux import Strategy

__all__ = [
    "CompiledOwnershipSpace",
    "available",
    "check",
    "config",
    "explore_compiled",
    "flatten",
    "successors",
    "unavailable_reason",
    "unflatten",
]

_STRATEGIES: Final = {Strategy.CLASSIC: 0, Strategy.CHIEF: 1, Strategy.CHIEF_CACHE: 2}
_EXPECTED: Final = {
    "FREE": rmgr.FREE,
    "RESERVED": rmgr.RESERVED,
    "RMGR_TASK": RMGR_TASK,
    "NO_OWNER": ts.NO_OWNER,
    "EIP_L4LINUX": l4linux.EIP_L4LINUX,
    "EIP_PROCESS": l4linux.EIP_PROCESS,
    "EIP_TASK_SERVER": ts.EIP_TASK_SERVER,
    "KILLED_STATUS": l4linux.KILLED_STATUS,
    "INIT_PID": l4linux.INIT_PID,
    "MAX_MCP": kernel.MAX_MCP,
    "VERSION_LOW": ts.VERSION_LOW,
    "PRIO_USER_PROCESS": l4linux.PRIO_USER_PROCESS,
    "PRIO_SERVER_PROC": l4linux.PRIO_SERVER_PROC,
    "FIRST_USER_TASK": FIRST_USER_TASK,
    "SIGMA0_TASK": SIGMA0_TASK,
    "EIP_SCRIPT": EIP_SCRIPT,
}


def _load() -> tuple[Any, str]:
    try:
        from protocols import _explore_core as core  # type: ignore[attr-defined]
    except ImportError as e:
        return None, f"not built ({e}); reinstall with `pip install -e .` and a C compiler"
    k = core.CONSTANTS
    wrong = sorted(name for name, value in _EXPECTED.items() if k.get(name) != value)
    if wrong:
        return None, f"built with other constants than the protocols ({', '.join(wrong)})"
    if set(k["INVARIANTS"]) != set(CHECKS):
        return None, "built with another list of invariants; rebuild it"
    return core, ""


_CORE, _WHY = _load()


def available() -> bool:
    """Whether the compiled core is built and matches the protocol modules."""
    return _CORE is not None


def unavailable_reason() -> str:
    """Why the core is not used ("" when it is)."""
    return _WHY


def config(space: Any) -> tuple[int, ...] | None:
    """The core's config for a ``FastOwnershipSpace``, or None if the core cannot run it."""
    if _CORE is None or not space.native:
        return None
    k = _CORE.CONSTANTS
    strategy = _STRATEGIES.get(space.strategy)
    caches = space.strategy.caches
    if (
        strategy is None
        or space.ts_me < 0
        or space.task_count > k["MAXT"]
        or len(space.clients) > k["MAXS"]
        or space.processes > k["MAXP"]
        or (caches and space.cache_size > k["MAXC"])
        or not space.quota < 2**31
        or any(not 0 <= n < 32 for n in space.trusted)
    ):
        return None
    names = k["INVARIANTS"]
    return (
        space.task_count,
        space.ts_me,
        space.ts_first,
        space.task_count - space.ts_first,
        space.quota,
        sum(1 << n for n in space.trusted),
        strategy,
        space.cache_size if caches else 0,
        space.processes,
        int(space.fix_task_new),
        int(space.fix_refusal),
        int(space.fix_free),
        int(space.fix_free_task),
        int(space.fix_kill),
        int(space.fix_cache),
        space.ref.version_window,
        int(space._inactive),
        int(space._rmgr_v),
        int(space.ref.symmetry),
        space.ref.pool[0],
        sum(1 << i for i, name in enumerate(names) if name in space.ref.invariants),
        -1 if space.ref.script is None else space.ref.script,
        int("task_new_succeeds_only_for_the_chief" in space.ref.invariants),
        int("only_the_owner_kills_or_frees" in space.ref.invariants),
        *space.clients,
    )


def _mask(numbers: frozenset[int]) -> int:
    assert all(0 <= n < 32 for n in numbers), numbers
    return sum(1 << n for n in numbers)


def flatten(s: State, count: int) -> list[int]:
    """A tuple state as the core's flat list of ints (``count``: task numbers)."""
    k, own, ver, handed, used, reset, recs, exits, lx = s
    assert not any(used[count:]), "RMGR's books beyond the task numbers"
    out = [len(lx), int(recs is not None), exits, _mask(handed), _mask(reset)]
    for row in k:
        out.extend(row)
    out.extend(own)
    out.extend(ver)
    out.extend(used[:count])
    if recs is not None:
        for rec in recs:
            out.extend(rec)
    for me, procs, slots, cache, retired, next_pid in lx:
        out += [me, next_pid, len(procs), len(slots), len(cache), len(retired)]
        for p in procs:
            out.extend(p)
        out += [*slots, *cache, *sorted(retired)]
    return out


def unflatten(flat: Sequence[int], count: int, nrec: int, books: int) -> State:
    """The tuple state of a flat list (``books``: the length of RMGR's ``used`` tuple)."""
    it = iter(flat)

    def take(n: int) -> tuple[int, ...]:
        return tuple(next(it) for _ in range(n))

    ns, has_ts, exits, handed, reset = take(5)
    k = tuple(take(8) for _ in range(count))
    own, ver, used = take(count), take(count), take(count)
    recs = tuple(take(4) for _ in range(nrec)) if has_ts else None
    lx = []
    for _ in range(ns):
        me, next_pid, np, nslots, ncache, nret = take(6)
        procs = tuple(take(5) for _ in range(np))
        slots, cache, retired = take(nslots), take(ncache), frozenset(take(nret))
        lx.append((me, procs, slots, cache, retired, next_pid))
    assert next(it, None) is None, "values left over"

    def bits(mask: int) -> frozenset[int]:
        return frozenset(n for n in range(32) if mask >> n & 1)

    padded = used + (0,) * (books - count)
    return (k, own, ver, bits(handed), padded, bits(reset), recs, exits, tuple(lx))


def successors(space: Any, s: State) -> list[tuple[int, State | None, bool]]:
    """The core's moves out of ``s``: (move index, state after or None when not built,
    whether the move broke a checked transition invariant)."""
    cfg = config(space)
    assert _CORE is not None and cfg is not None, "the core cannot run this space"
    count = space.task_count
    nrec, books = count - space.ts_first, len(s[4])
    return [
        (i, None if flat is None else unflatten(flat, count, nrec, books), broken)
        for i, flat, broken in _CORE.successors(cfg, flatten(s, count))
    ]


def check(space: Any, s: State) -> tuple[bool, int]:
    """The core's verdict on ``s`` (whether the invariants hold) and its fingerprint."""
    cfg = config(space)
    assert _CORE is not None and cfg is not None, "the core cannot run this space"
    ok, fp = _CORE.check(cfg, flatten(s, space.task_count))
    return bool(ok), int(fp)


def explore_compiled(
    space: Any,
    *,
    max_depth: int | None = None,
    progress: Callable[[int, int, int], None] | None = None,
) -> Any:
    """``explore_fast``'s search in the core: a ``FingerprintResult`` (engine
    "compiled"), or None when the core cannot run ``space`` or left it midway."""
    from protocols.explore_fast import FingerprintResult
    from protocols.explore_walk import omission_probability, peak_rss_bytes

    cfg = config(space)
    if _CORE is None or cfg is None:
        return None
    started = time.perf_counter()
    cpu0 = time.process_time()
    got = _CORE.explore(
        cfg,
        flatten(space.initial(), space.task_count),
        -1 if max_depth is None else max_depth,
        progress,
    )
    if got["unsupported"] is not None:
        return None
    path = got["path"]
    n = got["states"]
    return FingerprintResult(
        states=n,
        transitions=got["transitions"],
        depth=got["depth"],
        complete=got["complete"],
        seconds=time.perf_counter() - started,
        violation=None if path is None else space.counterexample(path, got["on_transition"]),
        cpu_seconds=time.process_time() - cpu0,
        peak_memory_bytes=peak_rss_bytes(),
        omission_probability=omission_probability(n),
        frontier=got["frontier"],
        engine="compiled",
    )


class CompiledOwnershipSpace:
    """``FastOwnershipSpace`` (same arguments) as a ``Walk`` on the core's states (bytes).

    For the sharded search (``protocols.explore_dist``): each move, fingerprint and
    verdict is one call into the core; a counterexample is replayed in the reference,
    as the fast space does."""

    engine = "compiled"
    """Which steps the states take (``FingerprintResult.engine`` of a search of it)."""

    def __init__(self, **kwargs: Any) -> None:
        from protocols.explore_fast import FastOwnershipSpace

        self.fast = FastOwnershipSpace(**kwargs)
        cfg = config(self.fast)
        if _CORE is None or cfg is None:
            raise ValueError(
                "the compiled core cannot run this space: "
                + (_WHY or "a configuration beyond what it covers")
            )
        self.cfg = cfg
        self._core = _CORE
        self._start: bytes = _CORE.encode(cfg, flatten(self.fast.initial(), self.fast.task_count))

    def initial(self) -> bytes:
        return self._start

    def fingerprint(self, state: bytes) -> int:
        return int(self._core.fingerprint(self.cfg, state))

    def moves(self, state: bytes) -> list[tuple[int, bytes | None, str | None]]:
        steps = self._core.step(self.cfg, state)
        return [(i, after, "broken" if broken else None) for i, after, broken in steps]

    def holds(self, state: bytes) -> bool:
        return bool(self._core.holds(self.cfg, state))

    def counterexample(self, path: Sequence[int], on_transition: bool) -> Any:
        return self.fast.counterexample(path, on_transition)

    def tuple_state(self, state: bytes) -> State:
        """The fast space's tuple state of one of these states."""
        count = self.fast.task_count
        flat = self._core.decode(self.cfg, state)
        return unflatten(flat, count, count - self.fast.ts_first, len(self.fast.initial()[4]))
