"""The fast explorer of the ownership spec: same answers as ``explore(OwnershipSpace)``.

``FastOwnershipSpace`` takes ``OwnershipSpace``'s arguments and walks the same
transition system with states as tuples of ints (``protocols.explore_tuple``) and the
steps of L4Linux calls and exits written on them (``protocols.explore_linux``); the
scripted client's calls and the ``merged`` strategy (or a step function other than the
spec's) go through the reference on decoded snapshots.  Transitions that change nothing
(a kill of a zombie, a wait with nothing to reap) and a ``Kill(q)`` a second process of
the same server sends (the same successor) are counted but not built.

``canonical`` gives the reference's classes: the L4Linux servers are ordered by a
signature that renaming them leaves unchanged, and only servers with equal signatures
are permuted (instead of every permutation); ``explore_fast`` keeps a 64-bit
fingerprint (Python's hash of that canonical tuple of ints, the same in every process)
per state, as TLC and Spin do, so two classes sharing a fingerprint would merge: the
probability of that omission is at most n(n-1)/2 / 2**64 for n states, and every result
states it.  Labels are made only for a counterexample, by replaying its moves in the
reference space, so a counterexample is the reference's own.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any, cast

import attrs

from protocols import l4linux
from protocols.explore import Counterexample, ExploreResult
from protocols.explore_checks import holds
from protocols.explore_codec import A, C, E, M, P, S, V, decode, encode
from protocols.explore_core import explore_compiled, unavailable_reason
from protocols.explore_linux import call, shutdown
from protocols.explore_ownership import EIP_SCRIPT, OwnershipSpace
from protocols.explore_script import script_moves
from protocols.explore_tuple import fix_flags
from protocols.explore_walk import Move, Packer, omission_probability, peak_rss_bytes, replay
from protocols.l4linux import Strategy

__all__ = ["ENGINES", "FastOwnershipSpace", "FingerprintResult", "explore_fast"]

ENGINES = ("auto", "compiled", "python")

_NATIVE = (Strategy.CLASSIC, Strategy.CHIEF, Strategy.CHIEF_CACHE)
_MARK = -7  # every L4Linux server's number, in a signature
_MEMO = 1 << 16  # concrete states whose fingerprint is remembered
_FP = (1 << 64) - 1
_INDEX = (1 << 20) - 1  # moves per state are far fewer; this value marks the root
_ROOT = _INDEX


def _rid(t: tuple[int, ...], m: dict[int, int]) -> tuple[int, ...]:
    return (m.get(t[0], t[0]), *t[1:]) if t else t


def _renamed_row(row: tuple[Any, ...], m: dict[int, int]) -> tuple[Any, ...]:
    """A task's row (``_tables``) with the servers' numbers renamed by ``m``."""
    rec = row[10]
    return (
        *row[:2],
        m.get(row[2], row[2]),
        *row[3:7],
        _rid(row[7], m),
        m.get(row[8], row[8]),
        row[9],
        (m.get(rec[0], rec[0]), *rec[1:]) if rec else rec,
        tuple(sorted((m.get(a, a), b) for a, b in row[11])) if row[11] else (),
    )


def _renamed_part(part: tuple[Any, ...], m: dict[int, int]) -> tuple[Any, ...]:
    procs, cache, slots = part
    return (
        tuple((*p[:3], _rid(p[3], m)) for p in procs),
        tuple(_rid(t, m) for t in cache),
        tuple(_rid(t, m) for t in slots),
    )


class FastOwnershipSpace:
    """``OwnershipSpace`` (same arguments) on tuple states; see the module docstring."""

    def __init__(self, **kwargs: Any) -> None:
        self.ref = ref = OwnershipSpace(**kwargs)
        self.strategy = ref.strategy
        self.cache_size = ref.cache_size
        self.processes = ref.processes
        self.native = ref.strategy in _NATIVE and "step" not in kwargs and "shutdown" not in kwargs
        for name, value in fix_flags(ref.edition).items():
            setattr(self, name, value)
        boot = ref.initial()
        self.quota = boot.rmgr.quota
        self.trusted = boot.rmgr.trusted
        self.ts_me = ref.ts_number if ref.ts_number is not None else -1
        self.ts_first = ref.pool[0] if ref.ts_number is not None else 0
        self.task_count = ref.task_count
        self.clients = ref.clients
        self._boot = encode(boot)
        self._window = ref.version_window
        self._inactive = ref._inactive_versions_matter
        self._rmgr_v = ref._rmgr_versions_matter
        self._memo: dict[int, int] = {}
        self._pool_parts = ref.strategy.uses_task_server
        """Every id a server holds (processes, cache, slots) is of a number the task
        server manages, never a server's own: its part needs no renaming."""

    # -- states and moves -------------------------------------------------------------

    def initial(self) -> tuple[Any, ...]:
        return self._boot

    def snapshot(self, s: tuple[Any, ...]) -> Any:
        """The reference's ``SystemSnapshot`` of tuple state ``s``."""
        return decode(
            s,
            ts_me=self.ref.ts_number,
            ts_first=self.ts_first,
            quota=self.quota,
            trusted=self.trusted,
            strategy=self.strategy,
            cache_size=self.cache_size,
            edition=self.ref.edition,
        )

    def moves(self, s: tuple[Any, ...]) -> Iterator[Move]:
        """(index in the reference's ``actions`` order, next state or None when it is
        known to be visited already, transition-invariant verdict)."""
        if not self.native:
            for i, (_, after, verdict) in enumerate(self.ref.actions(self.snapshot(s))):
                yield i, encode(after), verdict
            return
        i = 0
        servers = s[8]
        fork_ok_at = self.processes
        for si, x in enumerate(servers):
            procs = x[1]
            killed: set[int] = set()
            for p in procs:
                if p[3]:
                    continue
                pid, task = p[0], p[1]
                reap = any(q[2] == pid and q[3] for q in procs)
                yield i, call(s, self, si, 3, task, 0) if reap else None, None
                i += 1
                if len(procs) < fork_ok_at:
                    yield i, call(s, self, si, 0, task, 0), None
                    i += 1
                if pid != l4linux.INIT_PID:
                    yield i, call(s, self, si, 1, task, 0), None
                    i += 1
                for q in procs:
                    victim = q[0]
                    if victim == l4linux.INIT_PID:
                        continue
                    if q[3] or victim in killed:
                        yield i, None, None
                    else:
                        killed.add(victim)
                        yield i, call(s, self, si, 2, task, victim), None
                    i += 1
        for si in range(len(servers)):
            if s[6] is not None and s[0][self.ts_me][A]:
                yield i, shutdown(s, self, si), None
            else:
                gone, _ = self.ref._shutdown(self.snapshot(s), servers[si][0])
                yield i, encode(gone), None
            i += 1
        script = self.ref.script
        if script is not None:
            row = s[0][script]
            if row[A] and row[E] == EIP_SCRIPT:
                for scripted, broken in script_moves(s, self):
                    yield i, scripted, "broken" if broken else None
                    i += 1

    def check(self, s: tuple[Any, ...]) -> tuple[str, str] | None:
        """The reference's verdict on ``s``: (invariant, detail) or None."""
        return self.ref.check(self.snapshot(s))

    def holds(self, s: tuple[Any, ...]) -> bool:
        """Whether every checked state invariant holds in ``s`` (on the tuple itself)."""
        return holds(s, self, self.ref.invariants)

    def counterexample(self, path: Sequence[int], on_transition: bool) -> Counterexample:
        """The reference's counterexample for the moves ``path``: its labels, its verdict
        (``protocols.explore_walk.Walk``; the fast spec has no labels of its own)."""
        return replay(self.ref, path, on_transition)

    # -- the canonical form -----------------------------------------------------------

    def _places(self, s: tuple[Any, ...]) -> list[dict[int, int]]:
        """Per task number: each version value the state holds -> its place (the
        reference's ``_versions``)."""
        k, _, ver, _, _, _, recs, _, servers = s
        count = self.task_count
        inactive, rmgr_v = self._inactive, self._rmgr_v
        live: list[set[int]] = [set() for _ in range(count)]
        for n in range(5, count):
            row = k[n]
            if row[A] or inactive:
                live[n].add(row[V])
            if rmgr_v:
                live[n].add(ver[n])
        if recs is not None:
            first = self.ts_first
            for i, rec in enumerate(recs):
                live[first + i].add(rec[0])
        for x in servers:
            for t in x[2]:
                live[t & 2047].add(t >> 18)
            for t in x[3]:
                live[t & 2047].add(t >> 18)
            for p in x[1]:
                if not p[3]:
                    live[p[1] & 2047].add(p[1] >> 18)
        window = self._window
        extra: list[tuple[int, int]] = []
        for x in servers:
            for t in x[4]:
                n, v = t & 2047, t >> 18
                if v not in live[n] and any(0 <= v - u <= window for u in live[n]):
                    extra.append((n, v))
        for n, v in extra:
            live[n].add(v)
        gap = window + 1
        places: list[dict[int, int]] = []
        for vs in live:
            if len(vs) == 1:
                places.append(dict.fromkeys(vs, 0))
                continue
            pos: dict[int, int] = {}
            place = 0
            last = None
            for v in sorted(vs):
                if last is not None:
                    place += min(v - last, gap)
                pos[v] = place
                last = v
            places.append(pos)
        return places

    def _free(self, s: tuple[Any, ...]) -> frozenset[int]:
        if not self.ref.symmetry:
            return frozenset()
        k, own, _, _, _, _, recs, _, servers = s
        held = {t & 2047 for x in servers for t in x[3]}
        keeper = (-1,) if recs is None else (-1, self.ts_me)
        free = set()
        for n in self.ref.pool:
            if n in held or k[n][A] or own[n] not in keeper:
                continue
            if recs is not None:
                i = n - self.ts_first
                if 0 <= i < len(recs) and (recs[i][2] or recs[i][1] != -1):
                    continue
            free.add(n)
        return frozenset(free)

    def _tables(
        self, s: tuple[Any, ...], places: list[dict[int, int]]
    ) -> tuple[dict[int, tuple[Any, ...]], dict[int, tuple[Any, ...]]]:
        """Per task number its row, per live server its processes, cache and slots, with
        every number as it is (``_renamed_row`` and ``_renamed_part`` rename servers)."""
        k, own, ver, handed, _, _, recs, _, servers = s

        def rid(p: int) -> tuple[int, ...]:
            t, v = p & 2047, p >> 18
            if t >= 5 and v in places[t]:
                return (t, places[t][v])
            return (t, (p >> 11) & 127, v)

        retired: dict[int, list[tuple[int, tuple[int, ...]]]] = {}
        for x in servers:
            kept: dict[int, list[int]] = {}
            for t in x[4]:
                place = places[t & 2047].get(t >> 18)
                if place is not None:
                    kept.setdefault(t & 2047, []).append(place)
            for n, ps in kept.items():
                retired.setdefault(n, []).append((x[0], tuple(sorted(ps))))
        first = self.ts_first
        inactive, rmgr_v = self._inactive, self._rmgr_v
        rows = {}
        for n in range(5, self.task_count):
            e = k[n]
            rec: tuple[Any, ...] = ()
            if recs is not None and 0 <= n - first < len(recs):
                v, o, st, _ = recs[n - first]
                rec = (o, st, places[n][v])
            rows[n] = (
                places[n][e[V]] if e[A] or inactive else -1,
                places[n][ver[n]] if rmgr_v else -1,
                e[C],
                e[A],
                e[M],
                e[E],
                e[S],
                rid(e[P]) if e[P] else (),
                own[n],
                n in handed,
                rec,
                tuple(sorted(retired[n])) if n in retired else (),
            )
        parts = {}
        for x in servers:
            procs = x[1]
            rank = {p[0]: i for i, p in enumerate(procs, 1)}
            rank[0] = 0
            parts[x[0]] = (
                tuple((rank[p[2]], p[3], p[4], () if p[3] else rid(p[1])) for p in procs),
                tuple(rid(t) for t in x[3]),
                tuple(rid(t) for t in x[2]),
            )
        return rows, parts

    def canonical(self, s: tuple[Any, ...]) -> Hashable:
        places = self._places(s)
        free = self._free(s)
        rows, parts = self._tables(s, places)
        clients = self.clients
        pool = tuple(sorted(rows[n] for n in free))
        if len(clients) == 1 or not self.ref.symmetry:
            fixed = tuple((n, row) for n, row in rows.items() if n not in free)
            return fixed, pool, tuple(sorted((me, *part) for me, part in parts.items()))
        mark = dict.fromkeys(clients, _MARK)
        sig = {
            n: (
                n not in parts,
                (parts[n] if self._pool_parts else _renamed_part(parts[n], mark))
                if n in parts
                else (),
                _renamed_row(rows[n], mark),
            )
            for n in clients
        }
        ordered = sorted(clients, key=sig.__getitem__)
        groups = [list(g) for _, g in itertools.groupby(ordered, key=sig.__getitem__)]
        best: tuple[Any, ...] | None = None
        for choice in itertools.product(*(itertools.permutations(g) for g in groups)):
            order = [n for g in choice for n in g]
            if order == list(clients):
                fixed = tuple((n, row) for n, row in rows.items() if n not in free)
                code = fixed, pool, tuple(sorted((me, *part) for me, part in parts.items()))
            else:
                m = dict(zip(order, clients, strict=True))
                code = (
                    tuple(
                        sorted(
                            (m.get(n, n), _renamed_row(row, m))
                            for n, row in rows.items()
                            if n not in free
                        )
                    ),
                    tuple(sorted(_renamed_row(rows[n], m) for n in free)),
                    tuple(
                        sorted(
                            (m.get(me, me), *(p if self._pool_parts else _renamed_part(p, m)))
                            for me, p in parts.items()
                        )
                    ),
                )
            if best is None or code < best:
                best = code
        assert best is not None
        return best

    def fingerprint(self, s: tuple[Any, ...]) -> int:
        """64-bit fingerprint of ``s``'s canonical form.  Many successors are the same
        concrete state reached another way, so the last ``_MEMO`` fingerprints are kept,
        by the hash of what the canonical form reads (not RMGR's quota books, nor exit
        events): a hash, not the parts themselves, so the memo keeps no state alive (a
        frontier of packed states shares no parts with it).  Two concrete states with one
        hash in one memo window would share a fingerprint: at most _MEMO**2 / 2**64 per
        window, below 1e-7 even for a billion transitions."""
        key = hash((s[0], s[1], s[2] if self._rmgr_v else None, s[3], s[6], s[8]))
        memo = self._memo
        fp = memo.get(key)
        if fp is None:
            if len(memo) >= _MEMO:
                memo.clear()
            fp = memo[key] = hash(self.canonical(s))
        return fp


@attrs.frozen(kw_only=True)
class FingerprintResult(ExploreResult):
    """``ExploreResult`` of a search whose visited set holds 64-bit fingerprints."""

    cpu_seconds: float
    peak_memory_bytes: int
    """The process's peak resident memory (``getrusage``) when the search ended."""
    omission_probability: float
    """Upper bound on the probability that two states shared a fingerprint."""
    frontier: int
    """States found but not expanded when the search stopped (a depth bound cut it)."""
    engine: str = "python"
    """Which search ran: "python" (this module) or "compiled" (``explore_core``)."""


def _same(state: Any) -> Any:
    return state


def explore_fast(
    space: FastOwnershipSpace,
    *,
    max_depth: int | None = None,
    progress: Callable[[int, int, int], None] | None = None,
    compact: bool = True,
    engine: str = "auto",
) -> FingerprintResult:
    """Breadth-first search of ``space`` in the order of ``explore``; same counts.

    ``engine``: "auto" runs the compiled core (``protocols.explore_core``) where it
    covers the space and this module's search elsewhere; "compiled" insists on the core
    (ValueError if it cannot run the space); "python" never uses it.  ``compact`` keeps
    the Python search's frontier as ``explore_walk.Packer`` bytes (about a tenth of the
    memory per state, for a few percent more time)."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if engine != "python":
        done = explore_compiled(space, max_depth=max_depth, progress=progress)
        if done is not None:
            return cast(FingerprintResult, done)
        if engine == "compiled":
            raise ValueError(
                "the compiled core cannot run this search: "
                + (unavailable_reason() or "a configuration beyond what it covers")
            )
    started = time.perf_counter()
    cpu0 = time.process_time()
    start = space.initial()
    fp0 = space.fingerprint(start)
    # fingerprint -> the parent's fingerprint and the move's index, packed in one int
    # (a tuple per state would cost half as much again as the dict entry)
    parent: dict[int, int] = {fp0: _ROOT}
    transitions = depth = 0
    complete = True

    def moves_to(fp: int) -> list[int]:
        out: list[int] = []
        while True:
            up, index = parent[fp] >> 20, parent[fp] & _INDEX
            if index == _INDEX:
                return out[::-1]
            out.append(index)
            fp = up - (1 << 64) if up >> 63 else up  # hash() is signed

    def result(found: Counterexample | None) -> FingerprintResult:
        n = len(parent)
        return FingerprintResult(
            states=n,
            transitions=transitions,
            depth=depth,
            complete=complete and found is None,
            seconds=time.perf_counter() - started,
            violation=found,
            cpu_seconds=time.process_time() - cpu0,
            peak_memory_bytes=peak_rss_bytes(),
            omission_probability=omission_probability(n),
            frontier=len(frontier) if not complete and found is None else 0,
        )

    packer = Packer(start)
    pack, unpack = (packer.pack, packer.unpack) if compact else (_same, _same)
    frontier = [(pack(start), fp0)]
    if not space.holds(start):
        return result(space.counterexample([], False))
    level = 0
    fingerprint, holds_in = space.fingerprint, space.holds
    while frontier:
        if max_depth is not None and level >= max_depth:
            complete = False
            break
        level += 1
        nxt = []
        for item, fp in frontier:
            for index, after, verdict in space.moves(unpack(item)):
                transitions += 1
                if verdict is not None:
                    return result(space.counterexample([*moves_to(fp), index], True))
                if after is None:
                    continue
                fa = fingerprint(after)
                if fa in parent:
                    continue
                parent[fa] = (fp & _FP) << 20 | index
                if not holds_in(after):
                    return result(space.counterexample(moves_to(fa), False))
                nxt.append((pack(after), fa))
                depth = level
        frontier = nxt
        if progress is not None:
            progress(level, len(parent), transitions)
    return result(None)
