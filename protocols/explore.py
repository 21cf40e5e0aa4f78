"""Exhaustive, breadth-first exploration of a spec's reachable states.

``explore(space)`` visits every state reachable from ``space.initial()`` (up to an
optional depth), checks every state invariant in every state and every transition
invariant on every transition, and stops at the first violation.  Breadth first, so a
violation comes with a shortest counterexample.  States are deduplicated by
``space.canonical(state)``, which a space uses to merge symmetric states (clients are
interchangeable, and so are task numbers no one has touched).
"""

from __future__ import annotations

import functools
import itertools
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, Protocol, TypeVar

import attrs

from protocols import invariants as inv
from protocols import kernel, rmgr
from protocols.editions import DEFAULT_EDITION, Edition
from protocols.errors import ErrorCode
from protocols.ids import FIRST_USER_TASK, RMGR_TASK, SIGMA0_TASK, ThreadId, task_id
from protocols.snapshot import SystemSnapshot

__all__ = [
    "Counterexample",
    "ExploreResult",
    "KernelRmgrSpace",
    "Space",
    "explore",
]

S = TypeVar("S")
EIP_IDLE = 0
EIP_CLIENT = 0x1000
"""Same values as ``actors.images``: the spec marks client tasks by their start address."""


class Space(Protocol[S]):
    """A finite transition system to explore."""

    def initial(self) -> S: ...

    def actions(self, state: S) -> Iterable[tuple[str, S, str | None]]:
        """Every (label, next state, transition-invariant verdict) enabled in ``state``."""
        ...

    def canonical(self, state: S) -> Hashable: ...

    def check(self, state: S) -> tuple[str, str] | None:
        """(invariant name, detail) of the first state invariant violated, or None."""
        ...


@attrs.frozen(kw_only=True)
class Counterexample:
    """A shortest sequence of steps from the initial state to a violation."""

    invariant: str
    detail: str
    steps: tuple[str, ...]


@attrs.frozen(kw_only=True)
class ExploreResult:
    """What an exploration found."""

    states: int
    transitions: int
    depth: int
    """The greatest number of steps from the initial state to a new state found."""
    complete: bool
    """True if every reachable state was visited (no depth bound cut the search)."""
    seconds: float
    violation: Counterexample | None

    @property
    def states_per_second(self) -> float:
        return self.states / self.seconds if self.seconds > 0 else float("inf")


class _Explorer(Generic[S]):
    def __init__(self, space: Space[S]) -> None:
        self.space = space
        self.parent: dict[Hashable, tuple[Hashable | None, str]] = {}

    def path(self, key: Hashable, last: str | None = None) -> tuple[str, ...]:
        steps: list[str] = [] if last is None else [last]
        while True:
            parent, label = self.parent[key]
            if parent is None:
                break
            steps.append(label)
            key = parent
        return tuple(reversed(steps))


def explore(
    space: Space[S],
    *,
    max_depth: int | None = None,
    progress: Callable[[int, int, int], None] | None = None,
) -> ExploreResult:
    """Breadth-first search of ``space``; see the module docstring."""
    started = time.perf_counter()
    ex = _Explorer(space)
    start = space.initial()
    key0 = space.canonical(start)
    ex.parent[key0] = (None, "")
    transitions = 0
    depth = 0
    complete = True

    def result(violation: Counterexample | None) -> ExploreResult:
        return ExploreResult(
            states=len(ex.parent),
            transitions=transitions,
            depth=depth,
            complete=complete and violation is None,
            seconds=time.perf_counter() - started,
            violation=violation,
        )

    bad = space.check(start)
    if bad is not None:
        return result(Counterexample(invariant=bad[0], detail=bad[1], steps=()))
    frontier: deque[tuple[S, Hashable]] = deque([(start, key0)])
    level = 0
    while frontier:
        if max_depth is not None and level >= max_depth:
            complete = False
            break
        level += 1
        next_frontier: deque[tuple[S, Hashable]] = deque()
        for state, key in frontier:
            for label, after, verdict in space.actions(state):
                transitions += 1
                if verdict is not None:
                    name, detail = verdict.split(": ", 1)
                    return result(
                        Counterexample(invariant=name, detail=detail, steps=ex.path(key, label))
                    )
                after_key = space.canonical(after)
                if after_key in ex.parent:
                    continue
                ex.parent[after_key] = (key, label)
                bad = space.check(after)
                if bad is not None:
                    return result(
                        Counterexample(invariant=bad[0], detail=bad[1], steps=ex.path(after_key))
                    )
                next_frontier.append((after, after_key))
                depth = level
        frontier = next_frontier
        if progress is not None:
            progress(level, len(ex.parent), transitions)
    return result(None)


# -- the kernel + RMGR space -------------------------------------------------------------

KernelStep = Callable[
    [kernel.KernelState, ThreadId, kernel.KernelRequest],
    tuple[kernel.KernelState, kernel.KernelReply],
]


@attrs.frozen
class KRState:
    """One state of the kernel+RMGR space."""

    ks: kernel.KernelState
    rs: rmgr.RmgrState


class KernelRmgrSpace:
    """Clients (boot modules) get, hand over, create, delete and free ``tasks`` task numbers.

    Versions are abstracted to one bit (a new incarnation flips it) to keep the space
    finite; created tasks run idle code, so the actors are the clients.  ``edition``
    chooses the rules; ``invariants`` (names) limits the checks, all by default.
    """

    def __init__(
        self,
        *,
        tasks: int,
        clients: int,
        kernel_step: KernelStep | None = None,
        edition: Edition = DEFAULT_EDITION,
        invariants: tuple[str, ...] | None = None,
    ) -> None:
        if tasks < 1 or clients < 1:
            raise ValueError("need at least one task and one client")
        self.task_count = FIRST_USER_TASK + clients + tasks
        self.clients = tuple(range(FIRST_USER_TASK, FIRST_USER_TASK + clients))
        self.numbers = tuple(range(FIRST_USER_TASK + clients, self.task_count))
        self.edition = edition
        self.kernel_step: KernelStep = kernel_step or functools.partial(
            kernel.step, edition=edition
        )
        known = {f.__name__ for f in (*inv.STATE_INVARIANTS, *inv.TRANSITION_INVARIANTS)}
        unknown = set(invariants or ()) - known
        if unknown:
            raise ValueError(f"unknown invariants: {', '.join(sorted(unknown))}")
        self.checked = known if invariants is None else set(invariants)

    def initial(self) -> KRState:
        ks = kernel.boot_state(self.task_count)
        rs = rmgr.boot_state(self.task_count)
        ks, rs, _ = rmgr.start_modules(ks, rs, (EIP_CLIENT,) * len(self.clients))
        return KRState(ks, rs)

    def actions(self, state: KRState) -> Iterable[tuple[str, KRState, str | None]]:
        ks = state.ks
        for c in self.clients:
            me = ks.tasks[c].id
            for n in self.numbers:
                v = ks.tasks[n].version ^ 1
                yield from self._rmgr(state, me, rmgr.GetTask(number=n))
                yield from self._rmgr(state, me, rmgr.FreeTask(number=n))
                yield from self._rmgr(
                    state,
                    me,
                    rmgr.RmgrTaskNew(
                        dest=task_id(n, v), mcp_or_chief=1, eip=EIP_IDLE, pager=task_id(SIGMA0_TASK)
                    ),
                )
                yield from self._sys(
                    state,
                    me,
                    kernel.TaskNew(
                        dest=task_id(n, v),
                        mcp_or_new_chief=1,
                        eip=EIP_IDLE,
                        pager=task_id(SIGMA0_TASK),
                    ),
                )
                for to in (*self.clients, *self.numbers, RMGR_TASK):
                    yield from self._sys(
                        state, me, kernel.TaskNew(dest=task_id(n, v), mcp_or_new_chief=task_id(to))
                    )
            for owner in self.clients:
                yield from self._rmgr(state, me, rmgr.FreeTaskAll(owner=owner))

    def _rmgr(
        self, state: KRState, me: ThreadId, request: rmgr.RmgrRequest
    ) -> Iterable[tuple[str, KRState, str | None]]:
        ks, rs, reply = rmgr.step(state.ks, state.rs, me, request, edition=self.edition)
        if reply.error is not ErrorCode.OK and ks == state.ks and rs == state.rs:
            return
        verdict = None
        name = inv.only_the_owner_kills_or_frees.__name__
        if name in self.checked:
            before = SystemSnapshot(kernel=state.ks, rmgr=state.rs)
            detail = inv.only_the_owner_kills_or_frees(before, me, request, reply)
            verdict = None if detail is None else f"{name}: {detail}"
        yield f"{me}: {request!r} -> {reply.error.name}", KRState(ks, rs), verdict

    def _sys(
        self, state: KRState, me: ThreadId, request: kernel.TaskNew
    ) -> Iterable[tuple[str, KRState, str | None]]:
        ks, reply = self.kernel_step(state.ks, me, request)
        assert isinstance(reply, kernel.TaskNewReply)
        name = inv.task_new_succeeds_only_for_the_chief.__name__
        verdict = None
        if name in self.checked:
            verdict = inv.task_new_succeeds_only_for_the_chief(state.ks, me, request, reply, ks)
        if verdict is None and reply.task.is_nil and ks == state.ks:
            return
        yield (
            f"{me}: l4_task_new({request.dest}, {request.mcp_or_new_chief}, "
            f"pager={request.pager}) -> {reply.task}",
            KRState(ks, state.rs),
            None if verdict is None else f"{name}: {verdict}",
        )

    def canonical(self, state: KRState) -> Hashable:
        best: tuple[object, ...] | None = None
        for cp in itertools.permutations(self.clients):
            for np_ in itertools.permutations(self.numbers):
                rename = dict(zip(self.clients + self.numbers, cp + np_, strict=True))
                code = self._encode(state, rename)
                if best is None or code < best:
                    best = code
        assert best is not None
        return best

    def _encode(self, state: KRState, rename: dict[int, int]) -> tuple[object, ...]:
        def r(n: int) -> int:
            return rename.get(n, n)

        rows = {}
        for n in (*self.clients, *self.numbers):
            e = state.ks.tasks[n]
            rows[r(n)] = (r(e.chief), e.active, e.version, r(state.rs.owners[n]))
        return tuple(rows[k] for k in sorted(rows))

    def check(self, state: KRState) -> tuple[str, str] | None:
        snap = SystemSnapshot(kernel=state.ks, rmgr=state.rs)
        for invariant in inv.STATE_INVARIANTS:
            if invariant.__name__ not in self.checked:
                continue
            detail = invariant(snap)
            if detail is not None:
                return invariant.__name__, detail
        return None
