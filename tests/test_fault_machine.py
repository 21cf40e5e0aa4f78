"""The fault machine (crashes, crashes mid-call, slow servers) for each of the four strategies.

Each test prints the faults it injected; see ``tests.fault_machine`` for what holds.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings

from protocols.l4linux import Strategy
from tests.fault_machine import FaultMachine, fault_machine_for

EXAMPLES = 60
"""Examples per strategy in the ``ci`` profile (faults make steps slow; thorough: its own)."""


def _case(strategy: Strategy) -> type:
    case = fault_machine_for(strategy).TestCase
    if settings.default.max_examples <= 100:  # the ci profile: keep the suite fast
        case.settings = settings(settings.default, max_examples=EXAMPLES)
    return case


TestFaultClassic = _case(Strategy.CLASSIC)
TestFaultChief = _case(Strategy.CHIEF)
TestFaultChiefCache = _case(Strategy.CHIEF_CACHE)
TestFaultMerged = _case(Strategy.MERGED)


@pytest.fixture(autouse=True, scope="module")
def _fault_summary() -> Iterator[None]:
    yield
    faults = FaultMachine.FAULTS
    print(f"\nfaults injected: {sum(faults.values())}")
    for kind, count in sorted(faults.items()):
        print(f"  {kind}: {count}")
    print(f"most tasks lost at once: {FaultMachine.WORST['lost']}")
    print(f"longest overrun of a faulted call: {FaultMachine.WORST['overrun']:.3f} s")
