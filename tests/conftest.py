"""Shared fixtures and Hypothesis profiles.

Every system a test boots is stopped, also when the test fails.  Hypothesis runs with
the profile named by the environment variable ``L4SIM_HYPOTHESIS_PROFILE``: ``ci``
(default: few, derandomized examples; the whole suite stays fast) or ``thorough`` (many
more examples and longer runs, random seeds; for a campaign of some minutes).
``L4SIM_HYPOTHESIS_REDIS=redis://HOST:6379/0`` stores examples in that Redis server
instead (needs the ``fuzz`` extra); unset, the profile's own database is used.

Long campaigns beyond one machine (``pip install -e '.[test,fuzz]'``: HypoFuzz,
pytest-xdist, the Redis client):

* more cores, one test per worker::

      L4SIM_HYPOTHESIS_PROFILE=thorough pytest -n auto tests/test_ownership_machine.py \
          tests/test_fault_machine.py tests/test_adversary_machine.py

* for hours, HypoFuzz on every core (runs until stopped)::

      L4SIM_HYPOTHESIS_PROFILE=thorough hypothesis fuzz --no-dashboard -- \
          tests/test_fault_machine.py tests/test_adversary_machine.py

* several machines share one example database through one Redis server (e.g.
  ``redis-server --bind 127.0.0.1 --port 6379 --save ""``, reached through an ssh
  tunnel), so a failure found on any of them replays on every other: set
  ``L4SIM_HYPOTHESIS_REDIS=redis://127.0.0.1:6379/0`` on every run.

The ``ci`` profile keeps no database and is derandomized: the same run every time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pykka
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
_PROFILE = os.environ.get("L4SIM_HYPOTHESIS_PROFILE", "ci")
_REDIS = os.environ.get("L4SIM_HYPOTHESIS_REDIS")
if _REDIS:
    # One example database shared by every machine that points at this Redis server:
    # a failure found anywhere replays everywhere (module docstring).
    from hypothesis.extra.redis import RedisExampleDatabase
    from redis import Redis

    settings.register_profile(
        f"{_PROFILE}+redis",
        parent=settings.get_profile(_PROFILE),
        database=RedisExampleDatabase(Redis.from_url(_REDIS), key_prefix=b"l4sim-hypothesis"),
    )
    _PROFILE = f"{_PROFILE}+redis"
settings.load_profile(_PROFILE)


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


@pytest.fixture(autouse=True)
def _no_actor_survives_a_test() -> Iterator[None]:
    """Every actor a test started is stopped when it ends, also when it failed.

    Leftovers are stopped here (so one leaky test cannot slow or hang the rest) and the
    test fails, naming them."""
    yield
    left = pykka.ActorRegistry.get_all()
    if left:
        names = sorted({ref.actor_class.__name__ for ref in left})
        pykka.ActorRegistry.stop_all(block=True, timeout=10)
        pytest.fail(f"{len(left)} actors survived the test: {', '.join(names)}")
