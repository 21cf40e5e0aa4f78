"""What a sharded breadth-first search needs of a space: ``Walk``, and the reference's.

``protocols.explore_dist`` runs on any ``Walk``: an initial state, a 64-bit fingerprint
per state (the same in every process), the moves out of a state by index, whether the
state invariants hold, and a counterexample rebuilt from a path of move indices.  The
fast ownership space (``protocols.explore_fast.FastOwnershipSpace``) is one as it is:
tuple states, fingerprints of its canonical tuples of ints, moves that leave a state
unbuilt when it is known to be visited, labels made only by replaying a counterexample
in the reference.  ``as_walk`` turns any other ``explore.Space`` (attrs states) into
one, ``ReferenceWalk``: a move is an action, the fingerprint is BLAKE2b of the
canonical key's ``repr`` (or the space's own ``fingerprint``).

Move indices are those of the reference's ``actions`` order in both, so a path of
indices names the same steps in every space of the same spec.
"""

from __future__ import annotations

import hashlib
import itertools
import pickle
import resource
import zlib
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

from protocols.explore import Counterexample, Space

__all__ = [
    "Packer",
    "Move",
    "ReferenceWalk",
    "Walk",
    "as_walk",
    "fingerprinter",
    "plain",
    "stable_fingerprint",
]

Move = tuple[int, Any, str | None]
"""(index of the move, the next state or None when it is known to be visited already,
the transition-invariant verdict ``"name: detail"`` or None)."""


@runtime_checkable
class Walk(Protocol):
    """A space as the sharded search walks it; see the module docstring."""

    def initial(self) -> Any: ...

    def fingerprint(self, state: Any) -> int:
        """64 bits naming the state's class; equal in every process."""
        ...

    def moves(self, state: Any) -> Iterable[Move]: ...

    def holds(self, state: Any) -> bool:
        """Whether every state invariant holds in ``state``."""
        ...

    def counterexample(self, path: Sequence[int], on_transition: bool) -> Counterexample:
        """The labelled steps of the moves ``path`` from the initial state, and the
        invariant broken: by the last move (``on_transition``) or in the state reached."""
        ...


def omission_probability(states: int) -> float:
    """Bound on the chance that two of ``states`` states shared a 64-bit fingerprint, so
    that one was never explored: n(n-1)/2 pairs, each colliding with chance 2**-64."""
    return states * (states - 1) / 2 / 2.0**64


def peak_rss_bytes() -> int:
    """This process's peak resident memory in bytes (``getrusage`` gives KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def stable_fingerprint(key: Hashable) -> int:
    """64 bits of BLAKE2b over ``repr(key)``: the same in every process.

    ``key`` must be built of tuples, ints, bools, strings and None (their ``repr`` does not
    depend on the process; a set's or a dict's order can, with string hashing randomised
    per process, so those are refused by ``plain``).  ``hash()`` is no fingerprint here:
    it is randomised per process for strings (and, before Python 3.12, for None).
    """
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def plain(key: object) -> bool:
    """True if ``key`` is built only of tuples, ints, bools, strings and None."""
    if isinstance(key, tuple):
        return all(plain(item) for item in key)
    return key is None or isinstance(key, int | str)


def fingerprinter(space: Space[Any]) -> Callable[[Any], int]:
    """The space's own ``fingerprint`` if it has one, else that of its canonical key."""
    own = getattr(space, "fingerprint", None)
    if callable(own):
        return own  # type: ignore[no-any-return]
    canonical = space.canonical
    return lambda state: stable_fingerprint(canonical(state))


class ReferenceWalk:
    """An ``explore.Space`` as a ``Walk``: every action built, states checked as they are."""

    def __init__(self, space: Space[Any]) -> None:
        self.space = space
        self.fingerprint = fingerprinter(space)
        start = space.initial()
        if not callable(getattr(space, "fingerprint", None)) and not plain(space.canonical(start)):
            raise ValueError("canonical keys must be tuples of ints, bools, strings and None")

    def initial(self) -> Any:
        return self.space.initial()

    def moves(self, state: Any) -> Iterable[Move]:
        for index, (_label, after, verdict) in enumerate(self.space.actions(state)):
            yield index, after, verdict

    def holds(self, state: Any) -> bool:
        return self.space.check(state) is None

    def counterexample(self, path: Sequence[int], on_transition: bool) -> Counterexample:
        return replay(self.space, path, on_transition)


def replay(space: Space[Any], path: Sequence[int], on_transition: bool) -> Counterexample:
    """``Walk.counterexample`` for a reference space: its labels, its verdicts."""
    state = space.initial()
    labels: list[str] = []
    verdict = None
    for index in path:
        label, state, verdict = next(itertools.islice(space.actions(state), index, None))
        labels.append(label)
    if on_transition:
        assert verdict is not None, "the path's last move breaks no transition invariant"
        name, detail = verdict.split(": ", 1)
    else:
        bad = space.check(state)
        assert bad is not None, "the path's last state breaks no state invariant"
        name, detail = bad
    return Counterexample(invariant=name, detail=detail, steps=tuple(labels))


def as_walk(space: Space[Any] | Walk) -> Walk:
    """``space`` itself if it is a ``Walk``, else ``ReferenceWalk(space)``."""
    if isinstance(space, Walk):
        return space
    return ReferenceWalk(space)


class Packer:
    """Frontier states as bytes: a pickle, deflated with the initial state as dictionary.

    A tuple state of the fast space is a few hundred Python objects (about 1.5 KB per
    state on a frontier, shared subtuples counted once); its pickle is about 1.1 KB, and
    deflated against the initial state's pickle (the states of a search differ from it
    in a few places) about 100-130 bytes.  ``pack`` once per admitted state and
    ``unpack`` once per expansion cost a fraction of that expansion.  The dictionary is
    this process's own: packed states are never sent to another process.
    """

    def __init__(self, sample: Any, level: int = 1) -> None:
        self.zdict = pickle.dumps(sample, pickle.HIGHEST_PROTOCOL)
        self.level = level

    def pack(self, state: Any) -> bytes:
        deflate = zlib.compressobj(self.level, zdict=self.zdict)
        return deflate.compress(pickle.dumps(state, pickle.HIGHEST_PROTOCOL)) + deflate.flush()

    def unpack(self, blob: bytes) -> Any:
        return pickle.loads(zlib.decompressobj(zdict=self.zdict).decompress(blob))
