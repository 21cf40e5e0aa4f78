"""Findings: where chief ownership breaks in ``l4env-2007``, and the fix that removes each.

A finding is a promise of ``protocols.invariants`` that the seed's system, as its C
sources behave (edition ``l4env-2007``), does not keep.  Each one records

* the invariant it breaks and a plain-language story of how;
* the source lines responsible (repository, path, commit, lines);
* the ``Fix`` of ``hardened`` that removes it (``protocols.editions``);
* the **bound** within which it is confirmed: a configuration of the whole-system
  ownership space (``protocols.explore_ownership.OwnershipSpace``: strategy, task
  numbers, L4Linux clients, the scripted client) and a depth.

Nothing in the catalogue is a typed-in counterexample.  ``search(finding, edition)``
explores that bounded space breadth first, checking only the finding's invariant, so the
counterexample it returns is a *shortest* one, computed every time (ownership bounds with
``protocols.explore_fast``, which gives exactly the reference explorer's answers).
Three searches say everything about a finding:

* ``isolate(f)`` searches ``hardened`` less ``f.fix``: every other defect is fixed, so
  the counterexample is this finding's own (``l4sim findings`` prints it);
* ``search(f, L4ENV_2007)`` shows the invariant broken in the seed's system itself
  (possibly first by another finding's path);
* ``search(f, HARDENED)`` shows it absent once every fix is in.

So a finding found by ``isolate`` is also the proof that its fix is needed: without it,
``hardened`` breaks the promise.  "Absent" is as wide as the bound: every state
reachable within that many steps of that configuration, under the abstractions of the
canonical form (see ``protocols.explore_ownership``).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from protocols.editions import HARDENED, Edition, Fix
from protocols.explore import ExploreResult, KernelRmgrSpace, explore
from protocols.explore_api import ApiOwnershipSpace
from protocols.explore_fast import FastOwnershipSpace, explore_fast
from protocols.l4linux import DEFAULT_CACHE_SIZE, Strategy

__all__ = ["BEYOND_THE_EXPLORER", "FINDINGS", "Bound", "Finding", "finding", "isolate", "search"]


@attrs.frozen(kw_only=True)
class Bound:
    """The explored world in which a finding is confirmed (and absent in ``hardened``)."""

    strategy: Strategy | None = None
    """The L4Linux strategy (``ownership`` space only)."""
    space: str = "ownership"
    """``ownership`` (the whole system, ``OwnershipSpace``) or ``kernel-rmgr`` (the
    kernel and RMGR with scripted clients, ``protocols.explore.KernelRmgrSpace``)."""
    tasks: int
    """Task numbers the processes can run in (``OwnershipSpace(tasks=...)``)."""
    clients: int
    """L4Linux servers."""
    script: bool = False
    """Whether the misbehaving scripted client takes part."""
    processes: int | None = None
    """Bound on each server's process table (``OwnershipSpace(processes=...)``)."""
    cache_size: int = DEFAULT_CACHE_SIZE
    """Slots of each L4Linux's task cache (``chief+cache`` only)."""
    alphabet: str = "default"
    """What the callers may do (``protocols.explore_api``): ``default``, ``api`` (processes
    are clients of every server too) or ``api-holding``."""
    depth: int = 12
    """Steps explored: the counterexample is at most this long."""

    def describe(self) -> str:
        """``chief+cache, 3 tasks x 2 clients, depth 12``."""
        if self.space == "kernel-rmgr":
            return f"kernel-rmgr, {self.tasks} tasks x {self.clients} clients, depth {self.depth}"
        extra = ", scripted client" if self.script else ""
        if self.alphabet != "default":
            extra += f", alphabet {self.alphabet}"
        procs = f", {self.processes} processes" if self.processes is not None else ""
        strategy = self.strategy.value if self.strategy else "-"
        caches = self.strategy is not None and self.strategy.caches
        cache = f", cache size {self.cache_size}" if caches else ""
        return (
            f"{strategy}, {self.tasks} tasks x {self.clients} clients"
            f"{extra}{procs}{cache}, depth {self.depth}"
        )


@attrs.frozen(kw_only=True)
class Finding:
    """One broken promise of ``l4env-2007``."""

    name: str
    invariant: str
    """The name of the invariant in ``protocols.invariants`` it breaks."""
    story: str
    """What goes wrong, in a few plain sentences."""
    sources: tuple[str, ...]
    """The source lines responsible: ``repository path@commit:lines``."""
    fix: Fix
    """The fix of ``hardened`` that removes it."""
    bound: Bound


# --- findings in the kernel (l4_task_new) and RMGR ---------------------------------------

_KR = "osfree-project/l4env kernel/fiasco/src/kern/"
_RT = "osfree-project/l4env l4/pkg/roottask/server/src/"
_KR_BOUND = Bound(space="kernel-rmgr", tasks=2, clients=2, depth=12)

KERNEL_RMGR_FINDINGS: tuple[Finding, ...] = (
    Finding(
        name="TASK_NEW_DELETES_BEFORE_CHECKING_CHIEF",
        invariant="task_new_succeeds_only_for_the_chief",
        story=(
            "A chief hands its running task to a task that will not exist once the call has "
            "deleted the running one (the task itself, or one of its clan). Fiasco deletes "
            "first and checks the new chief afterwards, so the call answers nil, as if "
            "refused, yet the task and its clan are gone and the caller is their chief."
        ),
        sources=(
            f"{_KR}syscalls.cpp@e91a37df:671-702",
            f"{_KR}space_index.cpp@e91a37df:131-160",
        ),
        fix=Fix.TASK_NEW_DELETES_BEFORE_CHECKING_CHIEF,
        bound=_KR_BOUND,
    ),
    Finding(
        name="RMGR_REFUSAL_RELEASES_HELD_NUMBER",
        invariant="every_task_is_in_exactly_one_place",
        story=(
            "A client that already holds a task number and is its chief asks RMGR for it "
            "again. RMGR's l4_task_new is refused because RMGR is no longer chief, and RMGR "
            "then releases the number in its books: the number is free at RMGR while the "
            "client still is its chief, so whoever RMGR hands it to next is refused."
        ),
        sources=(f"{_RT}rmgr.c@e91a37df:118-132", f"{_RT}task.c@e91a37df:36-61"),
        fix=Fix.RMGR_REFUSAL_RELEASES_HELD_NUMBER,
        bound=_KR_BOUND,
    ),
    Finding(
        name="FREE_TASK_LEAVES_CHIEF",
        invariant="every_task_is_in_exactly_one_place",
        story=(
            "A client frees a task number it got from RMGR while it is still the number's "
            "chief. free_task only updates RMGR's books, so the number is free at RMGR but "
            "the client keeps the chief right (a running task keeps running); whoever RMGR "
            "gives the number to next is refused, until the old holder hands it back."
        ),
        sources=(f"{_RT}rmgr.c@e91a37df:289-306", f"{_RT}task.c@e91a37df:49-61"),
        fix=Fix.FREE_TASK_LEAVES_CHIEF,
        bound=_KR_BOUND,
    ),
    Finding(
        name="FREE_TASK_ALL_BY_ANYONE",
        invariant="only_the_owner_kills_or_frees",
        story=(
            "Any task can ask RMGR to free everything another task holds: free_task_all "
            "never looks at the caller, so RMGR deletes the other client's running tasks "
            "and releases their numbers. A client can kill what any other client (or "
            "RMGR's own boot modules) runs."
        ),
        sources=(f"{_RT}rmgr.c@e91a37df:255-287",),
        fix=Fix.FREE_TASK_ALL_BY_ANYONE,
        bound=_KR_BOUND,
    ),
)


# --- findings in the task server (simple_ts) ------------------------------------------

TASK_SERVER_FINDINGS: tuple[Finding, ...] = (
    Finding(
        name="FREE_LEAVES_CHIEF_WITH_CLIENT",
        invariant="every_task_is_in_exactly_one_place",
        story=(
            "A client gets a task number with allocate2, which makes it the kernel's chief of"
            " the task, and gives the number back with free (or with free2 without first"
            " handing the chief right to the task server).  simple_ts frees the number in its"
            " own books only: free never looks at the chief right, and free2 ignores whether"
            " its l4_task_new worked.  The number is free again, but the client is still its"
            " chief, so the next client to get it cannot create it (create and allocate2 fail"
            " at RMGR) while the first client can still start and stop it."
        ),
        sources=(
            "osfree-project/l4env l4/pkg/simple_ts/server/src/main.c@e91a37df:228-245",
            "osfree-project/l4env l4/pkg/simple_ts/server/src/main.c@e91a37df:420-436",
            "osfree-project/l4env l4/pkg/simple_ts/server/src/main.c@e91a37df:447-470",
        ),
        fix=Fix.FREE_LEAVES_CHIEF_WITH_CLIENT,
        bound=Bound(strategy=Strategy.CHIEF, tasks=3, clients=2, script=True, depth=8),
    ),
    Finding(
        name="SELF_KILL_FREES_OWNED_NUMBER",
        invariant="every_task_is_in_exactly_one_place",
        story=(
            "A process of L4Linux asks the task server to kill its own task with the FREE"
            " option.  simple_ts lets the task itself kill (the interface says so) and then"
            " frees the number in its books, although L4Linux owns it: the next client to"
            " allocate gets the number while L4Linux still counts it as its process's task,"
            " and L4Linux's later kill or free of it is refused as not the owner's."
        ),
        sources=(
            "osfree-project/l4env l4/pkg/simple_ts/server/src/main.c@e91a37df:297-357",
            "osfree-project/l4env l4/pkg/simple_ts/server/src/main.c@e91a37df:578-594",
            "osfree-project/l4env l4/pkg/generic_ts/idl/generic_ts.idl@e91a37df:94-100",
        ),
        fix=Fix.SELF_KILL_FREES_OWNED_NUMBER,
        bound=Bound(strategy=Strategy.CLASSIC, tasks=2, clients=1, alphabet="api", depth=6),
    ),
    Finding(
        name="DEAD_TASK_KEEPS_WHAT_IT_TOOK",
        invariant="exit_reclaims_everything",
        story=(
            "A process takes a task from the task server itself and is then killed with"
            " kill (L4Linux's classic path), kills itself, or is deleted by L4Linux and given"
            " back with free2 (the chief path).  Only kill_recursive and exit reclaim what a"
            " task owned, so the number it took stays owned by a dead task, and the next"
            " incarnation of the dead one's number inherits it."
        ),
        sources=(
            "osfree-project/l4env l4/pkg/simple_ts/server/src/main.c@e91a37df:297-377",
            "osfree-project/l4env l4/pkg/simple_ts/server/src/main.c@e91a37df:447-470",
        ),
        fix=Fix.DEAD_TASK_KEEPS_WHAT_IT_TOOK,
        bound=Bound(strategy=Strategy.CLASSIC, tasks=3, clients=1, alphabet="api", depth=6),
    ),
    Finding(
        name="HANDED_ON_TASK_OWNED_BY_THE_DEAD",
        invariant="exit_reclaims_everything",
        story=(
            "A process takes a task with allocate_chief and hands its chief right to another"
            " process (l4_task_new with a nil pager: any chief may).  Its server exits: the"
            " reclaim kills the first process but cannot kill the handed-on task (RMGR is not"
            " chief), and leaves it owned by the dead number.  The new holder then hands the"
            " right to RMGR; no server is told, and the number stays owned by the dead until"
            " the next incarnation of the dead one's number inherits it."
        ),
        sources=(
            "osfree-project/l4env l4/pkg/simple_ts/server/src/main.c@e91a37df:359-377",
            "osfree-project/l4env kernel/fiasco/src/kern/syscalls.cpp@e91a37df:650-782",
        ),
        fix=Fix.HANDED_ON_TASK_OWNED_BY_THE_DEAD,
        bound=Bound(strategy=Strategy.CHIEF, tasks=3, clients=2, alphabet="api-holding", depth=4),
    ),
)


# --- findings in L4Linux and the task cache -------------------------------------------

L4LINUX_FINDINGS: tuple[Finding, ...] = (
    Finding(
        name="TASK_CACHE_REUSES_OLD_ID",
        invariant="reused_tasks_get_a_new_version",
        story=(
            "The lx_task_cache example hands out a cached task under the very id it stored "
            "when it filled the slot, and takes it back only under that id: a child forks "
            "into the cached task, exits, and the next fork restarts the same task number "
            "under the same version, so any id of the dead process that is still held "
            "somewhere (a pending IPC, a stored thread id) now reaches the new process."
        ),
        sources=(
            "osfree-project/l4env l4/pkg/task/examples/lx_task_cache/taskcache.c@552f19d0:57-71",
            "osfree-project/l4env l4/pkg/task/examples/lx_task_cache/taskcache.c@552f19d0:74-88",
            "osfree-project/l4env l4/pkg/task/lib/client/client.c@552f19d0:109-112",
        ),
        fix=Fix.TASK_CACHE_REUSES_OLD_ID,
        bound=Bound(
            strategy=Strategy.CHIEF_CACHE,
            tasks=2,
            clients=1,
            processes=3,
            cache_size=1,
            depth=4,
        ),
    ),
)


FINDINGS: tuple[Finding, ...] = (*KERNEL_RMGR_FINDINGS, *TASK_SERVER_FINDINGS, *L4LINUX_FINDINGS)
"""Every finding of ``l4env-2007``, in the order ``l4sim findings`` lists them."""

BEYOND_THE_EXPLORER: dict[Fix, str] = {
    Fix.KILL_NEEDS_RMGR_AS_CHIEF: (
        "tests/test_task_server_fixes.py::"
        "test_kill_recursive_strands_a_number_whose_chief_right_is_at_the_task_server"
    ),
    Fix.FREE2_MOVES_CHIEF_FOR_ANYONE: (
        "tests/test_task_server_fixes.py::"
        "test_a_strangers_refused_free2_moves_the_chief_right_the_owner_handed_back"
    ),
}
"""Fixes of defects the bounded explorer does not reach (the explored clients are boot
modules, which simple_ts does not manage), each with the plain test that shows the defect
in ``l4env-2007`` and its absence in ``hardened``, spec and actors.  The fault machine
found KILL_NEEDS_RMGR_AS_CHIEF: a client that handed a chief right back to the task
server and then died left that number owned by the dead.  The adversary machine found
FREE2_MOVES_CHIEF_FOR_ANYONE (a refused free2 is not a refusal that changes nothing); it
breaks no state invariant, only that promise of the adversary's."""


def finding(name: str) -> Finding:
    """The finding called ``name``; ``ValueError`` if there is none."""
    for f in FINDINGS:
        if f.name == name:
            return f
    raise ValueError(f"no finding {name!r}; known: {', '.join(f.name for f in FINDINGS)}")


def search(
    f: Finding,
    edition: Edition,
    *,
    progress: Callable[[int, int, int], None] | None = None,
) -> ExploreResult:
    """Explore ``f``'s bound under ``edition``, checking only ``f``'s invariant."""
    b = f.bound
    if b.space == "kernel-rmgr":
        kr = KernelRmgrSpace(
            tasks=b.tasks, clients=b.clients, edition=edition, invariants=(f.invariant,)
        )
        return explore(kr, max_depth=b.depth, progress=progress)
    if b.strategy is None:
        raise ValueError(f"finding {f.name}: an ownership bound needs a strategy")
    bounds = dict(
        tasks=b.tasks,
        clients=b.clients,
        strategy=b.strategy,
        edition=edition,
        script=b.script,
        processes=b.processes,
        cache_size=b.cache_size,
        invariants=(f.invariant,),
    )
    if b.alphabet == "default":
        return explore_fast(FastOwnershipSpace(**bounds), max_depth=b.depth, progress=progress)
    # The fast path has the default alphabet only; the api ones extend the reference spec.
    api = ApiOwnershipSpace(alphabet=b.alphabet, **bounds)
    return explore(api, max_depth=b.depth, progress=progress)


def isolate(
    f: Finding, *, progress: Callable[[int, int, int], None] | None = None
) -> ExploreResult:
    """Search ``f``'s bound in ``hardened`` less ``f.fix``: ``f``'s own counterexample."""
    return search(f, HARDENED.without(f.fix), progress=progress)
