"""The kernel and RMGR findings: each one's own shortest counterexample, and the CLI.

``protocols.findings.KERNEL_RMGR_FINDINGS`` are searched in the kernel+RMGR space
(``Bound(space="kernel-rmgr")``).  The generic checks live in ``tests/test_findings.py``;
here each finding's counterexample is pinned to the calls the story tells.
"""

from __future__ import annotations

import json

import pytest

from protocols.editions import HARDENED, L4ENV_2007
from protocols.explore import KernelRmgrSpace, explore
from protocols.findings import KERNEL_RMGR_FINDINGS, finding, isolate
from scenarios.cli import main

STORIES = {
    # name: (steps, a phrase every counterexample contains)
    "TASK_NEW_DELETES_BEFORE_CHECKING_CHIEF": (3, "pager=nil) -> nil"),
    "RMGR_REFUSAL_RELEASES_HELD_NUMBER": (2, "GetTask(number=7) -> ENOTCHIEF"),
    "FREE_TASK_LEAVES_CHIEF": (2, "FreeTask(number=7) -> OK"),
    "FREE_TASK_ALL_BY_ANYONE": (2, "FreeTaskAll(owner=5) -> OK"),
}


def test_the_catalogue_lists_the_kernel_and_rmgr_findings() -> None:
    assert {f.name for f in KERNEL_RMGR_FINDINGS} == set(STORIES)
    assert all(f.bound.space == "kernel-rmgr" for f in KERNEL_RMGR_FINDINGS)


@pytest.mark.parametrize("name", sorted(STORIES))
def test_each_finding_has_its_own_shortest_counterexample(name: str) -> None:
    steps, phrase = STORIES[name]
    v = isolate(finding(name)).violation
    assert v is not None and v.invariant == finding(name).invariant
    assert len(v.steps) == steps
    assert phrase in "\n".join(v.steps)


def test_hardened_proves_the_kernel_and_rmgr_at_three_tasks_and_two_clients() -> None:
    result = explore(KernelRmgrSpace(tasks=3, clients=2, edition=HARDENED))
    assert result.violation is None and result.complete


def test_the_seed_system_breaks_a_promise_at_once() -> None:
    result = explore(KernelRmgrSpace(tasks=2, clients=2, edition=L4ENV_2007))
    assert result.violation is not None and len(result.violation.steps) == 2


def test_explore_takes_an_edition_for_the_kernel_rmgr_spec(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["explore", "--spec", "kernel-rmgr", "--json"]
    assert main([*argv, "--edition", "l4env-2007"]) == 1
    seed = json.loads(capsys.readouterr().out)
    assert main([*argv, "--edition", "hardened"]) == 0
    hard = json.loads(capsys.readouterr().out)
    assert seed != hard


def test_an_unknown_invariant_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown invariants"):
        KernelRmgrSpace(tasks=1, clients=1, invariants=("no_such_promise",))
