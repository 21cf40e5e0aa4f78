"""boot(): assembling a system and always stopping every actor it started."""

from __future__ import annotations

import pykka
import pytest

from actors import EIP_CLIENT, BootConfig, boot
from protocols.ids import SIGMA0_TASK, task_id
from protocols.invariants import check_all
from protocols.rmgr import RmgrTaskNew


def live_actors() -> int:
    return len(pykka.ActorRegistry.get_all())


def test_boot_starts_kernel_sigma0_rmgr_and_modules_and_stops_them_all() -> None:
    before = live_actors()
    with boot(task_count=16, modules=(EIP_CLIENT, EIP_CLIENT)) as system:
        assert [m.task for m in system.modules] == [5, 6]
        assert live_actors() == before + 5  # kernel, sigma0, RMGR, two modules
        check_all(system.snapshot())
    assert live_actors() == before


def test_actors_created_at_run_time_are_stopped_too() -> None:
    before = live_actors()
    with boot(task_count=16, modules=(EIP_CLIENT,)) as system:
        client = system.modules[0]
        for n in (8, 9, 10):
            system.perform(
                client,
                task_id(4),
                RmgrTaskNew(
                    dest=task_id(n), mcp_or_chief=1, eip=EIP_CLIENT, pager=task_id(SIGMA0_TASK)
                ),
            )
        assert live_actors() == before + 7
    assert live_actors() == before


def test_every_actor_is_stopped_when_the_body_raises() -> None:
    before = live_actors()
    with pytest.raises(RuntimeError, match="boom"), boot(task_count=8, modules=(EIP_CLIENT,)):
        raise RuntimeError("boom")
    assert live_actors() == before


@pytest.mark.parametrize(
    "overrides",
    [
        {"task_count": 5},
        {"task_count": 2049},
        {"task_count": 8, "modules": (EIP_CLIENT,) * 4},
        {"timeout": 0},
        {"timeout": -1.0},
    ],
    ids=repr,
)
def test_bad_configs_are_rejected_before_anything_starts(overrides: dict[str, object]) -> None:
    before = live_actors()
    with pytest.raises(ValueError):
        BootConfig(**overrides)  # type: ignore[arg-type]
    assert live_actors() == before


def test_a_full_size_table_boots() -> None:
    with boot() as system:
        snap = system.snapshot()
        assert snap.kernel.task_count == 2048
        check_all(snap)
