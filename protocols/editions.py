"""Editions: which rules a system runs by.

One code base models two systems:

``l4env-2007``
    The seed's system as its C sources behave, defects included: Fiasco's
    ``l4_task_new``, RMGR (roottask), simple_ts as of 2007-12, L4Linux's 2007-02
    task-server path and 2007-12 ``allocate2`` path, and the ``lx_task_cache`` example.
    Each rule of ``protocols.kernel``, ``protocols.rmgr``, ``protocols.task_server`` and
    ``protocols.l4linux`` cites the source lines it follows.
``hardened``
    ``l4env-2007`` plus the fewest named fixes that make every chief-ownership promise
    (``protocols.invariants``) hold.  Each ``Fix`` is named after the finding
    (``protocols.findings``) it removes.

An edition is nothing but a name and a set of fixes: a rule that a fix changes asks
``edition.has(Fix.X)``; every other rule is the same in both.  Any subset of the fixes
is an edition too (``Edition.custom``), which is how the price of one fix is measured
and how a test shows that one fix removes its finding.
"""

from __future__ import annotations

import enum
from typing import Final

import attrs

__all__ = [
    "DEFAULT_EDITION",
    "EDITIONS",
    "HARDENED",
    "L4ENV_2007",
    "Edition",
    "Fix",
    "edition",
]


class Fix(enum.Enum):
    """A named change of ``hardened`` against ``l4env-2007``; the value says what it does.

    Each member's docstring-like value is one sentence; the finding it removes, its story
    and the source lines responsible are in ``protocols.findings``."""

    # --- fixes in the kernel (l4_task_new) and RMGR -------------------------------------
    # (protocols.kernel, protocols.rmgr)
    TASK_NEW_DELETES_BEFORE_CHECKING_CHIEF = (
        "l4_task_new with a nil pager checks that the new chief will exist before it deletes"
    )
    RMGR_REFUSAL_RELEASES_HELD_NUMBER = (
        "a refused get_task or task_new releases only a reservation that call itself made"
    )
    FREE_TASK_LEAVES_CHIEF = (
        "free_task takes the chief right back with RMGR's l4_task_new before marking free"
    )
    FREE_TASK_ALL_BY_ANYONE = "free_task_all is allowed to the owner itself and trusted clients"

    # --- fixes in the task server (simple_ts) -----------------------------------------
    # (protocols.task_server)
    FREE_LEAVES_CHIEF_WITH_CLIENT = (
        "the task server remembers which numbers it handed out with allocate2: free refuses"
        " them, and free2 frees one only if its l4_task_new gave the chief right to RMGR"
    )

    KILL_NEEDS_RMGR_AS_CHIEF = (
        "kill deletes a task whose chief right sits at the task server itself with the "
        "task server's own l4_task_new, instead of failing because RMGR is not chief"
    )
    FREE2_MOVES_CHIEF_FOR_ANYONE = (
        "free2 checks that the caller owns the used number before its l4_task_new hands "
        "the chief right to RMGR"
    )
    DEAD_TASK_KEEPS_WHAT_IT_TOOK = (
        "a task server kill or free2 that leaves a number's task dead, and RMGR's free_task, "
        "free2 and free_client, also reclaim what that number took itself, recursively"
    )
    HANDED_ON_TASK_OWNED_BY_THE_DEAD = (
        "a reclaim that cannot take a dead owner's number back (a live task holds its chief "
        "right) leaves that number ownerless, so no next incarnation of the owner's number "
        "inherits it and, once the right is back at RMGR, any task may kill and free it"
    )
    SELF_KILL_FREES_OWNED_NUMBER = (
        "a task killing itself through the task server is deleted, but its number is freed "
        "only by its owner: kill's FREE option is ignored when the caller is the victim "
        "and someone else owns it"
    )

    # --- fixes in L4Linux and the task cache ------------------------------------------
    # (protocols.l4linux)
    TASK_CACHE_REUSES_OLD_ID = "a task taken from the task cache restarts under a new version"


@attrs.frozen(kw_only=True)
class Edition:
    """A named set of fixes applied to the ``l4env-2007`` rules."""

    name: str
    fixes: frozenset[Fix] = frozenset()

    def has(self, fix: Fix) -> bool:
        """Whether this edition applies ``fix``."""
        return fix in self.fixes

    @classmethod
    def custom(cls, fixes: frozenset[Fix] | set[Fix]) -> Edition:
        """``l4env-2007`` with exactly ``fixes``: named ``l4env-2007+fix+...`` after the fixes
        it has, or ``hardened-fix-...`` after those it lacks, whichever list is shorter."""
        fixes = frozenset(fixes)
        if fixes == HARDENED.fixes:
            return HARDENED
        if not fixes:
            return L4ENV_2007
        missing = HARDENED.fixes - fixes
        if len(missing) < len(fixes):
            name = "hardened-" + "-".join(sorted(f.name.lower() for f in missing))
        else:
            name = "l4env-2007+" + "+".join(sorted(f.name.lower() for f in fixes))
        return cls(name=name, fixes=fixes)

    def without(self, fix: Fix) -> Edition:
        """This edition less ``fix`` (``HARDENED.without(F)`` isolates the finding F removes)."""
        return Edition.custom(self.fixes - {fix})

    def __str__(self) -> str:
        return self.name


L4ENV_2007: Final = Edition(name="l4env-2007")
"""The system the seed measured, as its sources behave."""
HARDENED: Final = Edition(name="hardened", fixes=frozenset(Fix))
"""``l4env-2007`` with every fix."""
DEFAULT_EDITION: Final = L4ENV_2007
EDITIONS: Final = {e.name: e for e in (L4ENV_2007, HARDENED)}
"""The two named editions, by name."""


def edition(value: str | Edition) -> Edition:
    """The edition named ``value`` (an ``Edition`` passes through); ``ValueError`` if unknown."""
    if isinstance(value, Edition):
        return value
    if isinstance(value, str) and value in EDITIONS:
        return EDITIONS[value]
    raise ValueError(f"unknown edition {value!r}; choose one of {', '.join(EDITIONS)}")
