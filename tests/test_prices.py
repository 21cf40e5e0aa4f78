"""scenarios.cost.prices: each fix's price per fork+exit is the measured difference of two runs."""

from __future__ import annotations

import pytest

from protocols.editions import Fix
from scenarios.cost import prices
from scenarios.cost.profile import load_profile
from scenarios.record.l4world import STRATEGIES
from scenarios.scripts import fork

PROFILE = load_profile()


@pytest.fixture(scope="module")
def table() -> tuple[prices.Price, ...]:
    return prices.measure(PROFILE, pairs=4)


def test_every_fix_and_hardened_is_priced_under_every_strategy(
    table: tuple[prices.Price, ...],
) -> None:
    expected = {(f.name.lower(), s) for f in Fix for s in STRATEGIES}
    expected |= {("hardened", s) for s in STRATEGIES}
    assert {(p.what, p.strategy) for p in table} == expected
    assert len(table) == len(expected)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_hardeneds_price_is_the_fork_scenarios_difference(
    strategy: str, table: tuple[prices.Price, ...]
) -> None:
    seed = fork.measure(strategy, 4, PROFILE, "l4env-2007")
    hard = fork.measure(strategy, 4, PROFILE, "hardened")
    (row,) = [p for p in table if p.what == "hardened" and p.strategy == strategy]
    assert row.cycles == pytest.approx(hard.cycles_per_fork - seed.cycles_per_fork, abs=0.1)
    assert row.ipc == pytest.approx((hard.ipc - seed.ipc) / 4, abs=1e-3)
    assert row.share == pytest.approx(row.cycles / seed.cycles_per_fork, abs=1e-4)


def test_the_table_renders_one_line_per_price(table: tuple[prices.Price, ...]) -> None:
    lines = prices.render(table, PROFILE)
    fixes = list(dict.fromkeys(p.what for p in table))
    assert len(lines) == 2 + len(fixes)
    assert all(line.split()[0] == what for what, line in zip(fixes, lines[2:], strict=True))
    assert all(s in lines[1] for s in STRATEGIES)
    assert prices.to_json(table)[0]["strategy"] == table[0].strategy
