"""The fault machine (crashes, crashes mid-call, slow servers) for each of the four strategies.

See ``tests.fault_machine`` for what holds.  ``pytest tests/test_fault_machine.py
--hypothesis-show-statistics`` shows the faults injected by kind (``hypothesis.event``), the
most tasks lost at once and the longest overrun of a faulted call (``hypothesis.target``).
"""

from __future__ import annotations

from hypothesis import settings

from protocols.l4linux import Strategy
from tests.fault_machine import fault_machine_for

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
