"""README.rst opens with the two commands, and .ci/run runs README's test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.rst").read_text()
    return re.findall(r"::\n\n    (.+)\n", text)[:2]


def test_readme_opens_with_an_install_and_reproduce_command_and_a_test_command() -> None:
    main_job, tests = readme_commands()
    assert "pip install" in main_job and main_job.endswith("l4sim reproduce")
    assert "pip install" in tests and "[test]" in tests


def test_ci_runs_the_readme_test_command() -> None:
    test_command = readme_commands()[1].split(" && ", 2)[2]  # after venv creation/activation
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci
