"""The adversary machine for each of the four strategies; prints attacks by kind.

Every attack must be refused with a typed error and change nothing (see
``tests.adversary_machine``); the summary shows how many succeeded (must be 0).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings

from protocols.l4linux import Strategy
from tests.adversary_machine import KINDS, AdversaryMachine, adversary_machine_for

EXAMPLES = 40
"""Examples per strategy in the ``ci`` profile (the thorough profile uses its own)."""


def _case(strategy: Strategy) -> type:
    case = adversary_machine_for(strategy).TestCase
    if settings.default.max_examples <= 100:  # the ci profile: keep the suite fast
        case.settings = settings(settings.default, max_examples=EXAMPLES)
    return case


TestAdversaryClassic = _case(Strategy.CLASSIC)
TestAdversaryChief = _case(Strategy.CHIEF)
TestAdversaryChiefCache = _case(Strategy.CHIEF_CACHE)
TestAdversaryMerged = _case(Strategy.MERGED)


@pytest.fixture(autouse=True, scope="module")
def _attack_summary() -> Iterator[None]:
    yield
    tried, won = AdversaryMachine.ATTEMPTS, AdversaryMachine.SUCCEEDED
    print(f"\nattacks tried: {sum(tried.values())}, succeeded: {sum(won.values())}")
    for kind in KINDS:
        print(f"  {kind:15} tried {tried[kind]:6}  succeeded {won[kind]}")
