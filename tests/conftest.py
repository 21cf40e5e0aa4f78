"""Shared fixtures: every system a test boots is stopped, also when the test fails."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actors import EIP_CLIENT, System, boot

SMALL_TASKS = 24
"""A small kernel table keeps tests fast; the rules do not depend on the size."""


@pytest.fixture
def system() -> Iterator[System]:
    """A small system with three scripted clients (tasks 5, 6, 7) started by RMGR."""
    with boot(task_count=SMALL_TASKS, modules=(EIP_CLIENT,) * 3, timeout=5.0) as sys_:
        yield sys_
