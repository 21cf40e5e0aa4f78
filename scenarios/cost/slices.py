"""The fast engine's TLB: working sets as precomputed regions, and the TLB as an
automaton over the slices between flushes (``TlbSlices``).

``scenarios.cost.engine`` touches ``Region`` objects, not pages: a region holds the TLB
and cache keys of a working set, computed once per run.  The TLB is LRU per set exactly as
``scenarios.cost.plain.Tlb``; this module only remembers where each touch and flush leads
so that a repeated one is a dict lookup.
"""

from __future__ import annotations

from typing import ClassVar, Final

__all__ = ["DIRECT", "NOBODY", "Region", "TlbSlices"]


NOBODY: Final[list[Region]] = []
"""The holders of an empty cache set's line (never appended to)."""


class Region:
    """A working set as the engine touches it: the TLB and cache keys, precomputed.

    ``tlb`` holds ``(set, key)`` per page; ``cache`` holds ``(set, key, holders)`` per
    cache line (every page's lines, in the order the model looks them up), ``holders``
    being the regions that contain that line.  ``unsettled`` counts the region's distinct
    cache lines that are not the most recently used line of their set: at zero, touching
    the region again hits every line without changing the cache, so the engine skips its
    cache lookups (two-way caches only, where it is maintained).
    """

    __slots__ = ("after", "cache", "tlb", "unsettled")

    def __init__(
        self,
        tlb: tuple[tuple[int, int], ...],
        cache: tuple[tuple[int, int, list[Region]], ...],
    ) -> None:
        self.tlb = tlb
        self.cache = cache
        self.unsettled = 1
        self.after: dict[int, tuple[int, int]] = {}
        """TLB node -> (the node touching this region there leads to, its TLB misses)."""


DIRECT: Final = 0
"""The TLB node that stands for 'the real sets, whatever they hold' (nothing recorded)."""


class TlbSlices:
    """The TLB as an automaton over the slices between flushes, built as it is used.

    Right after a flush the TLB holds its sticky entries only, so its state is known from
    those (a *root*) plus the regions touched since (a path from the root): a node of a
    trie.  Touching region R at node n always leads to the same node with the same
    misses, so each transition is simulated once, recorded in ``R.after`` and from then
    on looked up; a flush at a node likewise (``flush_to``).  A fork trace goes through
    a few dozen nodes thousands of times.  The real sets are updated only to simulate a
    new transition, after replaying the node's path from its root if they are elsewhere.
    Beyond ``MAX_DEPTH`` touches without a flush (a tagged TLB, small spaces) nothing is
    recorded: the node is ``DIRECT`` (the real sets) until the next flush.
    """

    MAX_DEPTH: ClassVar[int] = 64

    def __init__(self, nsets: int, ways: int) -> None:
        self.sets: list[list[int]] = [[] for _ in range(nsets)]
        self.sticky = [0] * nsets
        """Sticky entries per set."""
        self.used: set[int] = set()
        """The sets that hold entries."""
        self.ways = ways
        # per node, indexed by node number (0 is DIRECT)
        self.parent = [DIRECT]
        self.step: list[Region | None] = [None]
        """The region whose touch led to the node (None for roots)."""
        self.depth = [0]
        self.flush_to = [DIRECT]
        """The root a flush at the node leads to (``DIRECT``: not known yet)."""
        self.snapshot: list[tuple[tuple[int, tuple[int, ...]], ...]] = [()]
        """A root's sticky entries: (set, entries oldest first) for every non-empty set."""
        self.roots: dict[tuple[tuple[int, tuple[int, ...]], ...], int] = {}
        self.at = self._root(())
        """The node the real sets are in (first: the empty TLB)."""
        self.start = self.at

    def _new(
        self,
        parent: int,
        step: Region | None,
        depth: int,
        snapshot: tuple[tuple[int, tuple[int, ...]], ...],
    ) -> int:
        self.parent.append(parent)
        self.step.append(step)
        self.depth.append(depth)
        self.flush_to.append(DIRECT)
        self.snapshot.append(snapshot)
        return len(self.parent) - 1

    def _root(self, snapshot: tuple[tuple[int, tuple[int, ...]], ...]) -> int:
        node = self.roots.get(snapshot)
        if node is None:
            node = self.roots[snapshot] = self._new(DIRECT, None, 0, snapshot)
        return node

    def touch(self, node: int, reg: Region) -> tuple[int, int]:
        """Touch ``reg`` at ``node`` (not recorded yet): (the next node, the misses)."""
        if node != self.at:
            self._replay(node)
        misses = self._apply(reg)
        if node == DIRECT or self.depth[node] >= self.MAX_DEPTH:
            self.at = DIRECT
            return DIRECT, misses
        hit = (self._new(node, reg, self.depth[node] + 1, ()), misses)
        reg.after[node] = hit
        self.at = hit[0]
        return hit

    def flush(self, node: int) -> int:
        """Flush at ``node`` (not recorded yet): drop every entry that is not sticky."""
        if node != self.at:
            self._replay(node)
        sets, sticky, used = self.sets, self.sticky, self.used
        for s in tuple(used):
            if not sticky[s]:
                sets[s] = []
                used.discard(s)
            elif len(sets[s]) != sticky[s]:
                sets[s] = [k for k in sets[s] if k & 1]
        root = self._root(tuple((s, tuple(sets[s])) for s in sorted(used)))
        if node != DIRECT:
            self.flush_to[node] = root
        self.at = root
        return root

    def _replay(self, node: int) -> None:
        """Bring the real sets to ``node``: its root's entries, then its path."""
        assert node != DIRECT, "the direct node is always where the real sets are"
        self.at = target = node
        path = []
        while (step := self.step[node]) is not None:
            path.append(step)
            node = self.parent[node]
        sets, sticky, used = self.sets, self.sticky, self.used
        for s in used:
            sets[s] = []
            sticky[s] = 0
        used.clear()
        for s, entries in self.snapshot[node]:
            sets[s] = list(entries)
            sticky[s] = len(entries)
            used.add(s)
        for reg in reversed(path):
            self._apply(reg)
        assert self.at == target

    def _apply(self, reg: Region) -> int:
        """Look every page of ``reg`` up in the real sets (LRU); returns the misses."""
        sets, sticky, used, ways_max = self.sets, self.sticky, self.used, self.ways
        misses = 0
        for s, k in reg.tlb:
            ways = sets[s]
            if k in ways:
                if ways[-1] != k:
                    ways.remove(k)
                    ways.append(k)
                continue
            misses += 1
            if len(ways) >= ways_max and ways.pop(0) & 1:
                sticky[s] -= 1
            ways.append(k)
            used.add(s)
            if k & 1:
                sticky[s] += 1
        return misses
