"""Shared fixtures: every system a test boots is stopped, also when the test fails."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scenarios.host import pin_requested, pin_to_one_cpu
from tests.backends import ActorBackend, Backend, SpecBackend, actor_system


def pytest_configure(config: pytest.Config) -> None:
    """Run the suite on one CPU, as the ``l4sim`` command does (``L4SIM_PIN=0``: don't)."""
    if pin_requested():
        pin_to_one_cpu()


@pytest.fixture(params=["spec", "actors"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The kernel+RMGR rules, run by the reference spec and by the actor system."""
    if request.param == "spec":
        yield SpecBackend()
    else:
        with actor_system() as system:
            yield ActorBackend(system)
