"""``explore`` over several worker processes or a Ray cluster, with the same answer.

``explore_distributed(factory, workers=N)`` returns exactly what
``protocols.explore.explore(factory())`` returns (states, transitions, depth, complete,
and the same shortest counterexample, step for step), computed by ``N`` workers:

* **Shards.**  Each state's *fingerprint* (``space.fingerprint(state)`` if the space has
  one, else ``stable_fingerprint(space.canonical(state))``: 64 bits, the same in every
  process) names its owner, ``fingerprint % N``.  The owner keeps the state's parent
  pointer (the parent's fingerprint and the index of the action taken from it) and, while
  the state is on the frontier, the state itself.
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
  its level, index of the action): the order of keys is that visiting order, and each
  level's keys are ranked densely for the next.  So the violation with the smallest key
  is the one ``explore`` stops at, and the counts up to it are reproduced exactly (the
  transitions of the parents ranked before it plus those of its own parent up to it;
  the new states whose keys are smaller).  No tie is ever broken by timing: the output
  is the same on every run and for any number of workers.
* **Counterexample.**  The parent pointers are followed back from owner to owner; the
  path of action indices is then replayed from the initial state, which gives the
  labels (the same concrete states ``explore`` stored, so the same labels).

A 64-bit fingerprint can collide (two different canonical states merged); for a
million states the chance is about 3e-8, as in any fingerprinting model checker.

Backends: ``processes`` (``multiprocessing`` with the ``spawn`` start method: the parent
may run threads, e.g. Pykka's, which ``fork`` would copy half-locked) and ``ray`` (one
Ray actor per worker; Ray is an optional extra, ``pip install 'l4sim[dist]'``, imported
only when used).  Spaces are not shipped: each worker builds its own from ``factory``, a
picklable callable such as ``functools.partial(OwnershipSpace, tasks=3, clients=2)``.
"""

from __future__ import annotations

import hashlib
import itertools
import pickle
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Final, Literal, Protocol

from protocols.explore import Counterexample, ExploreResult, Space
from protocols.explore_backends import Backend, DistError, ProcessBackend, RayBackend

__all__ = [
    "BACKENDS",
    "DEFAULT_TIMEOUT",
    "DistError",
    "Shard",
    "SpaceFactory",
    "explore_distributed",
    "fingerprinter",
    "stable_fingerprint",
]

SpaceFactory = Callable[[], Space[Any]]
"""Builds the space to explore; must pickle (every worker calls it)."""
BACKENDS: Final = ("processes", "ray")
DEFAULT_TIMEOUT: Final = 3600.0
"""Seconds one worker may take for one exchange of one level before the search fails."""
NO_PARENT: Final = None
"""The initial state's parent (a space's own fingerprints may be any int)."""

Key = tuple[int, int]
"""Where a state was found: (rank of its parent in its level, index of the action)."""
Verdict = tuple[Key, str, str, int]
"""A violation found by one worker: key, invariant, detail, fingerprint (see ``Shard``)."""


def stable_fingerprint(key: Hashable) -> int:
    """64 bits of BLAKE2b over ``repr(key)``: the same in every process.

    ``key`` must be built of tuples, ints, bools, strings and None (their ``repr`` does not
    depend on the process; a set's or a dict's order can, with string hashing randomised
    per process, so those are refused by ``plain``).  ``hash()`` is no fingerprint: it is
    randomised per process for strings.
    """
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def plain(key: object) -> bool:
    """True if ``key`` is built only of tuples, ints, bools, strings and None."""
    if isinstance(key, tuple):
        return all(plain(item) for item in key)
    return key is None or isinstance(key, int | str)


class _Fingerprinted(Protocol):
    def fingerprint(self, state: Any) -> int: ...


def fingerprinter(space: Space[Any]) -> Callable[[Any], int]:
    """The space's own ``fingerprint`` if it has one, else that of its canonical key."""
    own = getattr(space, "fingerprint", None)
    if callable(own):
        return own  # type: ignore[no-any-return]
    canonical = space.canonical
    return lambda state: stable_fingerprint(canonical(state))


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
        self.space = factory()
        self.fingerprint = fingerprinter(self.space)
        self.parent: dict[int, tuple[int | None, int]] = {}
        """fingerprint -> (parent's fingerprint, index of the action from the parent)."""
        self.admitted: list[tuple[Key, int, Any]] = []
        """The states found in the last level, by key: (key, fingerprint, state)."""
        self.expanded: list[tuple[int, int]] = []
        """(rank, number of actions) of each state expanded in this level."""
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
        self.parent[fp] = (NO_PARENT, 0)
        self.admitted = [((0, 0), fp, state)]
        return None, None

    def _expand(
        self, _mail: list[Any], ranks: Sequence[int]
    ) -> tuple[tuple[int, Verdict | None], list[list[tuple[int, int, int, int]]]]:
        """Expand the frontier in rank order; stop at this worker's first violation."""
        out: list[list[tuple[int, int, int, int]]] = [[] for _ in range(self.workers)]
        seen: set[int] = set()
        transitions = 0
        verdict: Verdict | None = None
        self.expanded = []
        frontier, self.admitted = self.admitted, []
        for rank, (_key, fp, state) in zip(ranks, frontier, strict=True):
            count = 0
            for index, (_label, after, bad) in enumerate(self.space.actions(state)):
                count += 1
                if bad is not None:
                    name, detail = bad.split(": ", 1)
                    verdict = ((rank, index), name, detail, fp)
                    break
                after_fp = self.fingerprint(after)
                owner = after_fp % self.workers
                if after_fp in seen or (owner == self.index and after_fp in self.parent):
                    continue
                seen.add(after_fp)
                out[owner].append((after_fp, rank, index, fp))
                self.pending[(rank, index)] = (after_fp, after)
            self.expanded.append((rank, count))
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
            self.parent[fp] = (parent, index)
            asks[sender].append((rank, index))
        return None, asks

    def _ship(self, mail: list[list[tuple[int, int]]]) -> tuple[None, list[list[Any]]]:
        out: list[list[Any]] = [[] for _ in range(self.workers)]
        for owner, asked in enumerate(mail):
            out[owner] = [(key, *self.pending[key]) for key in asked]
        self.pending = {}
        return None, out

    def _admit(self, mail: list[list[tuple[Key, int, Any]]]) -> tuple[tuple[list[Key], Any], None]:
        """Check the new states in key order; report their keys and the first violation."""
        self.admitted = sorted((item for items in mail for item in items), key=lambda i: i[0])
        violation: Verdict | None = None
        for key, fp, state in self.admitted:
            bad = self.space.check(state)
            if bad is not None:
                violation = (key, bad[0], bad[1], fp)
                break
        return ([key for key, _fp, _state in self.admitted], violation), None

    def _count(self, _mail: list[Any], before: Key) -> tuple[tuple[int, int], None]:
        """Transitions of the parents ranked before ``before`` and new states keyed below."""
        transitions = sum(count for rank, count in self.expanded if rank < before[0])
        states = sum(1 for key, _fp, _state in self.admitted if key < before)
        return (transitions, states), None

    def _parent_of(self, _mail: list[Any], fp: int) -> tuple[tuple[int | None, int], None]:
        return self.parent[fp], None


def explore_distributed(
    factory: SpaceFactory,
    *,
    workers: int,
    backend: Literal["processes", "ray"] = "processes",
    ray_address: str | None = None,
    max_depth: int | None = None,
    progress: Callable[[int, int, int], None] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> ExploreResult:
    """``explore(factory())`` on ``workers`` workers; see the module docstring.

    ``ray_address`` is passed to ``ray.init`` (``"local"``: a new Ray on this machine;
    ``"auto"``: the cluster this machine joined); ``None`` uses the Ray this process
    already initialised, or starts one as ``ray.init()`` does.  ``DistError`` (one line)
    if Ray is missing or unreachable, a worker dies or an exchange exceeds ``timeout``.
    """
    if workers < 1:
        raise ValueError("need at least one worker")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    started = time.perf_counter()
    space = factory()
    fingerprint = fingerprinter(space)
    start = space.initial()
    if not callable(getattr(space, "fingerprint", None)) and not plain(space.canonical(start)):
        raise ValueError("canonical keys must be tuples of ints, bools, strings and None")
    bad = space.check(start)
    if bad is not None:
        violation = Counterexample(invariant=bad[0], detail=bad[1], steps=())
        return ExploreResult(
            states=1,
            transitions=0,
            depth=0,
            complete=False,
            seconds=time.perf_counter() - started,
            violation=violation,
        )
    pool: Backend
    if backend == "processes":
        pool = ProcessBackend(factory, workers, Shard, timeout=timeout)
    else:
        pool = RayBackend(factory, workers, Shard, address=ray_address, timeout=timeout)
    with pool:
        return _search(space, start, fingerprint(start), pool, max_depth, progress, started)


def _search(
    space: Space[Any],
    start: Any,
    fp0: int,
    pool: Backend,
    max_depth: int | None,
    progress: Callable[[int, int, int], None] | None,
    started: float,
) -> ExploreResult:
    workers = pool.workers
    pool.ask(fp0 % workers, "seed", (fp0, start))
    keys: list[list[Key]] = [[(0, 0)] if w == fp0 % workers else [] for w in range(workers)]
    states, transitions, depth, level, complete = 1, 0, 0, 0, True
    violation: Counterexample | None = None
    while any(keys):
        if max_depth is not None and level >= max_depth:
            complete = False
            break
        level += 1
        ranks = _ranks(keys)
        expanded = pool.round("expand", [(r,) for r in ranks])
        pool.round("decide", [()] * workers)
        pool.round("ship", [()] * workers)
        admitted = pool.round("admit", [()] * workers)
        keys = [k for k, _bad in admitted]
        found = [v for _n, v in expanded if v is not None]
        checked = [v for _k, v in admitted if v is not None]
        first = min((*found, *checked), default=None)
        if first is not None:
            key, name, detail, fp = first
            is_check = first in checked
            counts = pool.round("count", [(key,)] * workers)
            transitions += sum(t for t, _s in counts) + key[1] + 1
            new = sum(s for _t, s in counts)
            states += new + (1 if is_check else 0)
            depth = level if new else depth
            path = _path(pool, fp)
            steps = _replay(space, start, path if is_check else (*path, key[1]))
            violation = Counterexample(invariant=name, detail=detail, steps=steps)
            complete = False
            break
        transitions += sum(n for n, _v in expanded)
        new = sum(len(k) for k in keys)
        states += new
        depth = level if new else depth
        if progress is not None:
            progress(level, states, transitions)
    return ExploreResult(
        states=states,
        transitions=transitions,
        depth=depth,
        complete=complete,
        seconds=time.perf_counter() - started,
        violation=violation,
    )


def _ranks(keys: list[list[Key]]) -> list[list[int]]:
    """Dense ranks of every worker's (sorted) keys in the order of all keys."""
    everything = sorted(key for ks in keys for key in ks)
    rank = {key: r for r, key in enumerate(everything)}
    return [[rank[key] for key in ks] for ks in keys]


def _path(pool: Backend, fp: int) -> tuple[int, ...]:
    """The action indices from the initial state to ``fp``, asking each state's owner."""
    indices: list[int] = []
    while True:
        parent, index = pool.ask(fp % pool.workers, "parent_of", (fp,))
        if parent is NO_PARENT:
            return tuple(reversed(indices))
        indices.append(index)
        fp = parent


def _replay(space: Space[Any], start: Any, path: Sequence[int]) -> tuple[str, ...]:
    """The labels of the actions ``path`` names, taken from ``start``."""
    steps: list[str] = []
    state = start
    for index in path:
        label, state, _bad = next(itertools.islice(space.actions(state), index, None))
        steps.append(label)
    return tuple(steps)
