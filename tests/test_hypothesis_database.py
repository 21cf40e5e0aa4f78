"""``L4SIM_HYPOTHESIS_REDIS`` selects a shared Redis example database; unset, nothing changes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHOW = (
    "import tests.conftest; from hypothesis import settings; "
    "print(type(settings.default.database).__name__, settings.default.derandomize)"
)


def database_with(env: dict[str, str]) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("L4SIM_HYPOTHESIS")}
    out = subprocess.run(
        [sys.executable, "-c", SHOW],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip()


def test_without_the_variable_the_ci_profile_keeps_no_database() -> None:
    assert database_with({}) == "NoneType True"


def test_the_variable_selects_a_redis_database_for_the_chosen_profile() -> None:
    pytest.importorskip("redis")  # the fuzz extra; no server needed to construct it
    env = {
        "L4SIM_HYPOTHESIS_REDIS": "redis://127.0.0.1:6379/0",
        "L4SIM_HYPOTHESIS_PROFILE": "thorough",
    }
    assert database_with(env) == "RedisExampleDatabase False"
