"""protocols.findings / l4sim findings: each defect of l4env-2007 is found within its bound,
is its own (found with every other fix in place), and is absent in hardened."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from protocols import invariants
from protocols.editions import HARDENED, L4ENV_2007, Fix
from protocols.findings import BEYOND_THE_EXPLORER, FINDINGS, Finding, finding, isolate, search
from scenarios.cli import main

SOURCE = re.compile(
    r"^osfree-project/l4(env|linux-l4env) \S+@[0-9a-f]{8,40}:\d+(-\d+)?(, ?\d+(-\d+)?)*"
)
MAX_STEPS = 12


def test_the_catalogue_is_not_empty_and_every_fix_removes_a_finding() -> None:
    assert FINDINGS, "l4env-2007 has findings"
    names = [f.name for f in FINDINGS]
    assert len(set(names)) == len(names)
    beyond = set(BEYOND_THE_EXPLORER)
    assert {f.fix for f in FINDINGS} | beyond == set(Fix), "each fix removes a finding"
    assert not beyond & {f.fix for f in FINDINGS}
    assert all(f.name == f.fix.name for f in FINDINGS), "each fix is named after its finding"
    root = Path(__file__).resolve().parent.parent
    for test in BEYOND_THE_EXPLORER.values():
        path, name = test.split("::")
        assert f"def {name}(" in (root / path).read_text(), test
    assert finding(names[0]) is FINDINGS[0]
    with pytest.raises(ValueError, match="no finding"):
        finding("no-such-finding")


@pytest.mark.parametrize("f", FINDINGS, ids=lambda f: f.name)
def test_a_finding_names_a_promise_its_sources_and_a_story(f: Finding) -> None:
    named = {i.__name__ for i in (*invariants.STATE_INVARIANTS, *invariants.TRANSITION_INVARIANTS)}
    assert f.invariant in named
    assert f.sources and all(SOURCE.match(s) for s in f.sources), f.sources
    assert len(f.story.split()) >= 15


@pytest.mark.parametrize("f", FINDINGS, ids=lambda f: f.name)
def test_a_finding_is_found_with_every_other_fix_in_place(f: Finding) -> None:
    """Isolated: hardened less this one fix breaks the promise, so the fix is needed."""
    v = isolate(f).violation
    assert v is not None, f"{f.name} not found in {f.bound.describe()}"
    assert v.invariant == f.invariant
    assert len(v.steps) <= min(MAX_STEPS, f.bound.depth)


@pytest.mark.parametrize("f", FINDINGS, ids=lambda f: f.name)
def test_the_seed_system_breaks_the_promise(f: Finding) -> None:
    v = search(f, L4ENV_2007).violation
    assert v is not None and v.invariant == f.invariant


@pytest.mark.parametrize("f", FINDINGS, ids=lambda f: f.name)
def test_hardened_keeps_the_promise_in_the_whole_bound(f: Finding) -> None:
    result = search(f, HARDENED)
    assert result.violation is None
    assert result.complete or result.depth == f.bound.depth


def test_the_cli_lists_the_findings_of_each_edition(capsys: pytest.CaptureFixture[str]) -> None:
    first = FINDINGS[0].name
    assert main(["findings", "--only", first, "--json"]) == 0
    seed = json.loads(capsys.readouterr().out)
    assert [f["name"] for f in seed["findings"]] == [first]
    assert seed["findings"][0]["steps"] and seed["findings"][0]["sources"]
    assert main(["findings", "--edition", "hardened", "--only", first, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["findings"] == []
    assert main(["findings", "--only", "nope"]) == 2
