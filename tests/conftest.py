"""Shared fixtures and Hypothesis profiles.

Every system a test boots is stopped, also when the test fails.  Hypothesis runs with
the profile named by the environment variable ``L4SIM_HYPOTHESIS_PROFILE``: ``ci``
(default: few, derandomized examples; the whole suite stays fast) or ``thorough`` (many
more examples and longer runs, random seeds; for a campaign of some minutes).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from actors import EIP_CLIENT, System, boot
from scenarios.host import pin_requested, pin_to_one_cpu
from tests.backends import ActorBackend, Backend, SpecBackend, actor_system

settings.register_profile(
    "ci",
    max_examples=100,
    stateful_step_count=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=(HealthCheck.too_slow, HealthCheck.data_too_large),
)
settings.register_profile(
    "thorough",
    max_examples=400,
    stateful_step_count=80,
    deadline=None,
    suppress_health_check=(HealthCheck.too_slow, HealthCheck.data_too_large),
)
settings.load_profile(os.environ.get("L4SIM_HYPOTHESIS_PROFILE", "ci"))


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


@pytest.fixture
def system() -> Iterator[System]:
    """A small system with three scripted clients (tasks 5, 6, 7) started by RMGR."""
    with boot(task_count=24, modules=(EIP_CLIENT,) * 3, timeout=5.0) as sys_:
        yield sys_
