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
counterexample it returns is a *shortest* one, computed every time.  Three searches say
everything about a finding:

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
from protocols.explore import ExploreResult, explore
from protocols.explore_ownership import OwnershipSpace
from protocols.l4linux import Strategy

__all__ = ["FINDINGS", "Bound", "Finding", "finding", "isolate", "search"]


@attrs.frozen(kw_only=True)
class Bound:
    """The explored world in which a finding is confirmed (and absent in ``hardened``)."""

    strategy: Strategy
    tasks: int
    """Task numbers the processes can run in (``OwnershipSpace(tasks=...)``)."""
    clients: int
    """L4Linux servers."""
    script: bool = False
    """Whether the misbehaving scripted client takes part."""
    processes: int | None = None
    """Bound on each server's process table (``OwnershipSpace(processes=...)``)."""
    depth: int = 12
    """Steps explored: the counterexample is at most this long."""

    def describe(self) -> str:
        """``chief+cache, 3 tasks x 2 clients, depth 12``."""
        extra = ", scripted client" if self.script else ""
        procs = f", {self.processes} processes" if self.processes is not None else ""
        return (
            f"{self.strategy.value}, {self.tasks} tasks x {self.clients} clients"
            f"{extra}{procs}, depth {self.depth}"
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

KERNEL_RMGR_FINDINGS: tuple[Finding, ...] = ()


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
)


# --- findings in L4Linux and the task cache -------------------------------------------

L4LINUX_FINDINGS: tuple[Finding, ...] = ()


FINDINGS: tuple[Finding, ...] = (*KERNEL_RMGR_FINDINGS, *TASK_SERVER_FINDINGS, *L4LINUX_FINDINGS)
"""Every finding of ``l4env-2007``, in the order ``l4sim findings`` lists them."""


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
    space = OwnershipSpace(
        tasks=b.tasks,
        clients=b.clients,
        strategy=b.strategy,
        edition=edition,
        script=b.script,
        processes=b.processes,
        invariants=(f.invariant,),
    )
    return explore(space, max_depth=b.depth, progress=progress)


def isolate(
    f: Finding, *, progress: Callable[[int, int, int], None] | None = None
) -> ExploreResult:
    """Search ``f``'s bound in ``hardened`` less ``f.fix``: ``f``'s own counterexample."""
    return search(f, HARDENED.without(f.fix), progress=progress)
