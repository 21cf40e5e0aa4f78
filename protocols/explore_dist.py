"""``explore`` over several worker processes or a Ray cluster, with the same answer.

``explore_distributed(factory, workers=N)`` returns exactly what the single-process
search of ``factory()`` returns (``explore_fast`` for ``FastOwnershipSpace``, ``explore``
for any other ``explore.Space``: states, transitions, depth, complete, and the same
shortest counterexample, step for step), computed by ``N`` workers.  It walks a
``protocols.explore_walk.Walk``: the fast space is one, any other space is wrapped
(``as_walk``); nothing below depends on which.

* **Shards.**  Each state's *fingerprint* (``Walk.fingerprint``, 64 bits, the same in
  every process) names its owner, ``fingerprint % N``.  The owner keeps the state's parent
  pointer (the parent's fingerprint and the index of the move taken from it, packed in
  one int as ``explore_fast`` does) and, while the state is on the frontier, the state
  itself, packed (``explore_walk.Packer``: about a tenth of its size as objects).  Mail
  between shards carries fingerprints, keys and states (tuples of ints for the fast
  space: cheap to pickle).
* **Levels.**  All workers expand level k, then successors go to their owners, then
  level k+1 starts: so every state is first found at its breadth-first distance and
  counterexamples stay shortest.  A level is four exchanges: *expand* (each worker
  sends each owner the fingerprints it found, keyed by where it found them), *decide*
  (owners keep the fingerprints not seen before, each with the smallest key, and ask the
  finder for the state), *ship* (finders send only those states: most successors are
  duplicates, and pickling a state costs about as much as one transition), *admit*
  (owners check the state invariants of the new states and report their keys).
* **Order.**  The single-process explorer visits a level in the order its states were
  found and stops at the first violation.  Here a state's *key* is (rank of its parent in
  its level, index of the move): the order of keys is that visiting order, and each
  level's keys are ranked densely for the next.  So the violation with the smallest key
  is the one ``explore`` stops at, and the counts up to it are reproduced exactly (the
  transitions of the parents ranked before it plus those of its own parent up to it;
  the new states whose keys are smaller).  No tie is ever broken by timing: the output
  is the same on every run and for any number of workers.
* **Counterexample.**  The parent pointers are followed back from owner to owner; the
  path of move indices is then given to ``Walk.counterexample``, which replays it in the
  reference space for the labels (the fast space makes none while it searches).

A 64-bit fingerprint can collide (two different canonical states merged); the result
(``DistResult``, a ``FingerprintResult``) states the probability, n(n-1)/2 / 2**64.

Backends: ``processes`` (``multiprocessing`` with the ``spawn`` start method: the parent
may run threads, e.g. Pykka's, which ``fork`` would copy half-locked) and ``ray`` (one
Ray actor per worker; Ray is an optional extra, ``pip install 'l4sim[dist]'``, imported
only when used).  Spaces are not shipped: each worker builds its own from ``factory``, a
picklable callable such as ``functools.partial(FastOwnershipSpace, tasks=3, clients=2)``.
"""

from __future__ import annotations

import bisect
import pickle
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, Literal

import attrs

from protocols.explore import Counterexample, Space
from protocols.explore_backends import Backend, DistError, ProcessBackend, RayBackend
from protocols.explore_fast import FingerprintResult
from protocols.explore_walk import (
    Packer,
    Walk,
    as_walk,
    fingerprinter,
    omission_probability,
    peak_rss_bytes,
    stable_fingerprint,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_TIMEOUT",
    "DistError",
    "DistResult",
    "Shard",
    "SpaceFactory",
    "explore_distributed",
    "fingerprinter",
    "stable_fingerprint",
]

SpaceFactory = Callable[[], Space[Any] | Walk]
"""Builds the space to explore; must pickle (every worker calls it)."""
BACKENDS: Final = ("processes", "ray")
DEFAULT_TIMEOUT: Final = 3600.0
"""Seconds one worker may take for one exchange of one level before the search fails."""
FP_MASK: Final = (1 << 64) - 1
"""Fingerprints are taken unsigned (``hash()`` is signed), so owners and pointers agree."""
INDEX_BITS: Final = 20
ROOT: Final = (1 << INDEX_BITS) - 1
"""The move index of the initial state's parent pointer (no state has that many moves)."""

PART: Final = 4096
"""States of a level expanded per round of exchanges: a worker holds the successors it
found (as objects, most of them duplicates) only until the end of the round."""

Key = tuple[int, int]
"""Where a state was found: (rank of its parent in its level, index of the move)."""
Verdict = tuple[Key, bool, int]
"""A violation found by one worker: key, on a transition?, fingerprint (see ``Shard``)."""


@attrs.frozen(kw_only=True)
class DistResult(FingerprintResult):
    """``FingerprintResult`` of a distributed search, with each worker's share.

    ``cpu_seconds`` is the coordinator's and all workers' together, ``peak_memory_bytes``
    the largest process's."""

    workers_cpu_seconds: tuple[float, ...]
    workers_peak_memory_bytes: tuple[int, ...]
    workers_states: tuple[int, ...]
    """Fingerprints each worker owns."""


class Shard:
    """One worker's share: its states' parent pointers, its frontier, its mail.

    ``call(method, args, inbox)`` runs one exchange: ``inbox[w]`` is what worker ``w``
    sent this one in the previous exchange (pickled; ``None`` for nothing or for this
    worker itself, whose own mail stays here unpickled).  It returns a summary for the
    coordinator and an outbox, one slot per worker, in the same form.
    """

    def __init__(self, index: int, workers: int, factory: SpaceFactory) -> None:
        self.index = index
        self.workers = workers
        self.walk = as_walk(factory())
        self.parent: dict[int, int] = {}
        """fingerprint -> parent's fingerprint << INDEX_BITS | index of the move."""
        self.packer = Packer(self.walk.initial())
        self.admitted: list[tuple[Key, int, bytes]] = []
        """The states found in this level, by key: (key, fingerprint, packed state)."""
        self.frontier: list[tuple[Key, int, bytes]] = []
        """The states found in the last level, expanded part by part from ``cursor``."""
        self.cursor = 0
        self.expanded: list[tuple[int, int]] = []
        """(rank, number of moves) of each state expanded in this level."""
        self.pending: dict[Key, tuple[int, Any]] = {}
        """Successors found here (fingerprint, state), kept until their owner asks."""
        self._kept: list[Any] = []

    def call(
        self, method: str, args: tuple[Any, ...], inbox: Sequence[bytes | None]
    ) -> tuple[Any, list[bytes | None]]:
        mail = [
            self._kept if w == self.index else pickle.loads(blob) if blob is not None else []
            for w, blob in enumerate(inbox)
        ]
        self._kept = []
        summary, out = getattr(self, "_" + method)(mail, *args)
        outbox: list[bytes | None] = [None] * self.workers
        for w, items in enumerate(out or ()):
            if w == self.index:
                self._kept = items
            elif items:
                outbox[w] = pickle.dumps(items, pickle.HIGHEST_PROTOCOL)
        return summary, outbox

    def call_flat(
        self, method: str, args: tuple[Any, ...], *inbox: bytes | None
    ) -> tuple[Any, ...]:
        """``call`` with the inbox and outbox spread out (one Ray object per slot)."""
        summary, outbox = self.call(method, args, inbox)
        return (summary, *outbox)

    def _seed(self, _mail: list[Any], fp: int, state: Any) -> tuple[None, None]:
        self.parent[fp] = ROOT
        self.admitted = [((0, 0), fp, self.packer.pack(state))]
        return None, None

    def _expand(
        self, _mail: list[Any], ranks: Sequence[int], fresh: bool
    ) -> tuple[tuple[int, Verdict | None], list[list[tuple[int, int, int, int]]]]:
        """Expand the next ``len(ranks)`` states of the frontier (``fresh``: the states
        found in the last level become the frontier) in rank order; stop at this
        worker's first violation."""
        workers, me, parent = self.workers, self.index, self.parent
        fingerprint = self.walk.fingerprint
        out: list[list[tuple[int, int, int, int]]] = [[] for _ in range(workers)]
        pending = self.pending
        seen: set[int] = set()
        transitions = 0
        verdict: Verdict | None = None
        if fresh:
            self.frontier, self.admitted, self.expanded, self.cursor = self.admitted, [], [], 0
        expanded = self.expanded
        frontier = self.frontier[self.cursor : self.cursor + len(ranks)]
        self.cursor += len(ranks)
        moves, unpack = self.walk.moves, self.packer.unpack
        for rank, (_key, fp, packed) in zip(ranks, frontier, strict=True):
            count = 0
            for index, after, bad in moves(unpack(packed)):
                count += 1
                if bad is not None:
                    verdict = ((rank, index), True, fp)
                    break
                if after is None:
                    continue
                after_fp = fingerprint(after) & FP_MASK
                owner = after_fp % workers
                if after_fp in seen or (owner == me and after_fp in parent):
                    continue
                seen.add(after_fp)
                out[owner].append((after_fp, rank, index, fp))
                pending[(rank, index)] = (after_fp, after)
            expanded.append((rank, count))
            transitions += count
            if verdict is not None:
                break
        return (transitions, verdict), out

    def _decide(
        self, mail: list[list[tuple[int, int, int, int]]]
    ) -> tuple[None, list[list[tuple[int, int]]]]:
        """Keep each unseen fingerprint with its smallest key; ask its finder for it."""
        best: dict[int, tuple[int, int, int, int]] = {}
        for sender, items in enumerate(mail):
            for fp, rank, index, parent in items:
                if fp in self.parent:
                    continue
                old = best.get(fp)
                if old is None or (rank, index) < old[:2]:
                    best[fp] = (rank, index, parent, sender)
        asks: list[list[tuple[int, int]]] = [[] for _ in range(self.workers)]
        for fp, (rank, index, parent, sender) in best.items():
            self.parent[fp] = parent << INDEX_BITS | index
            asks[sender].append((rank, index))
        return None, asks

    def _ship(self, mail: list[list[tuple[int, int]]]) -> tuple[None, list[list[Any]]]:
        out: list[list[Any]] = [[] for _ in range(self.workers)]
        for owner, asked in enumerate(mail):
            out[owner] = [(key, *self.pending[key]) for key in asked]
        self.pending = {}
        return None, out

    def _admit(self, mail: list[list[tuple[Key, int, Any]]]) -> tuple[tuple[list[Key], Any], None]:
        """Check the new states in key order; report their keys and the first violation.

        The states are kept packed (``explore_walk.Packer``) until they are expanded."""
        found = sorted((item for items in mail for item in items), key=lambda i: i[0])
        violation: Verdict | None = None
        holds, pack = self.walk.holds, self.packer.pack
        admitted: list[tuple[Key, int, bytes]] = []  # keys above those of earlier parts
        for key, fp, state in found:
            if violation is None and not holds(state):
                violation = (key, False, fp)
            admitted.append((key, fp, pack(state)))
        self.admitted.extend(admitted)
        return ([key for key, _fp, _state in admitted], violation), None

    def _count(self, _mail: list[Any], before: Key) -> tuple[tuple[int, int], None]:
        """Transitions of the parents ranked before ``before`` and new states keyed below."""
        transitions = sum(count for rank, count in self.expanded if rank < before[0])
        states = sum(1 for key, _fp, _state in self.admitted if key < before)
        return (transitions, states), None

    def _parent_of(self, _mail: list[Any], fp: int) -> tuple[int, None]:
        return self.parent[fp], None

    def _stats(self, _mail: list[Any]) -> tuple[tuple[float, int, int], None]:
        """This worker's CPU seconds, peak resident memory (bytes) and states owned."""
        peak = peak_rss_bytes()
        return (time.process_time(), peak, len(self.parent)), None


def explore_distributed(
    factory: SpaceFactory,
    *,
    workers: int,
    backend: Literal["processes", "ray"] = "processes",
    ray_address: str | None = None,
    max_depth: int | None = None,
    progress: Callable[[int, int, int], None] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    part: int = PART,
) -> DistResult:
    """The single-process search of ``factory()`` on ``workers`` workers; see the module
    docstring.

    ``ray_address`` is passed to ``ray.init`` (``"local"``: a new Ray on this machine;
    ``"auto"``: the cluster this machine joined); ``None`` uses the Ray this process
    already initialised, or starts one as ``ray.init()`` does.  ``DistError`` (one line)
    if Ray is missing or unreachable, a worker dies or an exchange exceeds ``timeout``.
    """
    if workers < 1 or part < 1:
        raise ValueError("need at least one worker and one state per part")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    run = _Run(as_walk(factory()), workers, part)
    if not run.walk.holds(run.start):
        return run.result(1, 0, 0, False, run.walk.counterexample((), False), 0, [])
    pool: Backend
    if backend == "processes":
        pool = ProcessBackend(factory, workers, Shard, timeout=timeout)
    else:
        pool = RayBackend(factory, workers, Shard, address=ray_address, timeout=timeout)
    with pool:
        return run.search(pool, max_depth, progress)


class _Run:
    """The coordinator of one search: levels, counts, the counterexample, the result."""

    def __init__(self, walk: Walk, workers: int, part: int) -> None:
        self.part = part
        self.started = time.perf_counter()
        self.cpu0 = time.process_time()
        self.walk = walk
        self.workers = workers
        self.start = walk.initial()
        self.fp0 = walk.fingerprint(self.start) & FP_MASK

    def search(
        self,
        pool: Backend,
        max_depth: int | None,
        progress: Callable[[int, int, int], None] | None,
    ) -> DistResult:
        workers, fp0 = self.workers, self.fp0
        pool.ask(fp0 % workers, "seed", (fp0, self.start))
        keys: list[list[Key]] = [[(0, 0)] if w == fp0 % workers else [] for w in range(workers)]
        states, transitions, depth, level, complete = 1, 0, 0, 0, True
        violation: Counterexample | None = None
        while any(keys):
            if max_depth is not None and level >= max_depth:
                complete = False
                break
            level += 1
            ranks = _ranks(keys)
            total = sum(len(r) for r in ranks)
            keys = [[] for _ in range(workers)]
            level_transitions = 0
            first = None
            for lo in range(0, total, self.part):
                part = [
                    rs[bisect.bisect_left(rs, lo) : bisect.bisect_left(rs, lo + self.part)]
                    for rs in ranks
                ]
                expanded = pool.round("expand", [(p, lo == 0) for p in part])
                pool.round("decide", [()] * workers)
                pool.round("ship", [()] * workers)
                admitted = pool.round("admit", [()] * workers)
                for w, (k, _bad) in enumerate(admitted):
                    keys[w].extend(k)
                level_transitions += sum(n for n, _v in expanded)
                found = [v for _n, v in expanded if v is not None]
                checked = [v for _k, v in admitted if v is not None]
                first = min((*found, *checked), default=None)
                if first is not None:
                    break
            if first is not None:
                key, on_transition, fp = first
                counts = pool.round("count", [(key,)] * workers)
                transitions += sum(t for t, _s in counts) + key[1] + 1
                new = sum(s for _t, s in counts)
                states += new + (0 if on_transition else 1)
                depth = level if new else depth
                path = _path(pool, fp)
                violation = self.walk.counterexample(
                    (*path, key[1]) if on_transition else path, on_transition
                )
                complete = False
                break
            transitions += level_transitions
            new = sum(len(k) for k in keys)
            states += new
            depth = level if new else depth
            if progress is not None:
                progress(level, states, transitions)
        frontier = sum(len(k) for k in keys) if not complete and violation is None else 0
        stats = pool.round("stats", [()] * workers)
        return self.result(states, transitions, depth, complete, violation, frontier, stats)

    def result(
        self,
        states: int,
        transitions: int,
        depth: int,
        complete: bool,
        violation: Counterexample | None,
        frontier: int,
        stats: list[tuple[float, int, int]],
    ) -> DistResult:
        cpus = tuple(cpu for cpu, _peak, _n in stats)
        peaks = tuple(peak for _cpu, peak, _n in stats)
        mine = peak_rss_bytes()
        return DistResult(
            states=states,
            transitions=transitions,
            depth=depth,
            complete=complete and violation is None,
            seconds=time.perf_counter() - self.started,
            violation=violation,
            cpu_seconds=time.process_time() - self.cpu0 + sum(cpus),
            peak_memory_bytes=max((mine, *peaks)),
            omission_probability=omission_probability(states),
            frontier=frontier,
            workers_cpu_seconds=cpus,
            workers_peak_memory_bytes=peaks,
            workers_states=tuple(n for _cpu, _peak, n in stats),
            engine=getattr(self.walk, "engine", "python"),
        )


def _ranks(keys: list[list[Key]]) -> list[list[int]]:
    """Dense ranks of every worker's (sorted) keys in the order of all keys."""
    everything = sorted(key for ks in keys for key in ks)
    rank = {key: r for r, key in enumerate(everything)}
    return [[rank[key] for key in ks] for ks in keys]


def _path(pool: Backend, fp: int) -> tuple[int, ...]:
    """The move indices from the initial state to ``fp``, asking each state's owner."""
    indices: list[int] = []
    while True:
        packed = pool.ask(fp % pool.workers, "parent_of", (fp,))
        index = packed & ROOT
        if index == ROOT:
            return tuple(reversed(indices))
        indices.append(index)
        fp = packed >> INDEX_BITS
