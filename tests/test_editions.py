"""protocols.editions: one code base, named rule sets; the edition reaches the whole system."""

from __future__ import annotations

import pytest

from actors import boot
from protocols import ownership
from protocols.editions import (
    DEFAULT_EDITION,
    EDITIONS,
    HARDENED,
    L4ENV_2007,
    Edition,
    Fix,
    edition,
)
from protocols.l4linux import Strategy


def test_the_seed_system_is_the_default_and_hardened_has_every_fix() -> None:
    assert DEFAULT_EDITION is L4ENV_2007 and not L4ENV_2007.fixes
    assert HARDENED.fixes == frozenset(Fix)
    assert set(EDITIONS) == {"l4env-2007", "hardened"}


def test_edition_names_resolve_and_unknown_names_are_refused() -> None:
    assert edition("hardened") is HARDENED and edition(L4ENV_2007) is L4ENV_2007
    with pytest.raises(ValueError, match="unknown edition 'l4env-2006'"):
        edition("l4env-2006")


@pytest.mark.parametrize("fix", list(Fix), ids=lambda f: f.name.lower())
def test_hardened_less_one_fix_is_a_named_edition_without_it(fix: Fix) -> None:
    less = HARDENED.without(fix)
    assert not less.has(fix) and less.fixes == HARDENED.fixes - {fix}
    if len(Fix) > 2:
        assert less.name == f"hardened-{fix.name.lower()}", "named after the fix it lacks"
    assert Edition.custom(less.fixes | {fix}) is HARDENED
    assert Edition.custom({fix}).has(fix) and Edition.custom({fix}).name.endswith(fix.name.lower())


def test_each_fix_says_what_it_changes() -> None:
    for fix in Fix:
        assert isinstance(fix.value, str) and len(fix.value) > 20, fix


@pytest.mark.parametrize("name", sorted(EDITIONS))
def test_the_edition_reaches_the_booted_system_and_the_spec(name: str) -> None:
    with boot(task_count=32, linux=1, strategy="chief", edition=name) as system:
        actual = system.snapshot()
    spec = ownership.boot(
        task_count=32, linux_servers=1, strategy=Strategy.CHIEF, edition=EDITIONS[name]
    )
    assert actual.edition == spec.edition == EDITIONS[name]
    assert actual == spec
