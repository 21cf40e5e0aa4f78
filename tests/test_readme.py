"""README.rst opens with the two commands, and .ci/run runs README's test command."""

from __future__ import annotations

import re
import shlex
import textwrap
from pathlib import Path

import pytest

from scenarios import cli

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.rst").read_text()
    return re.findall(r"::\n\n    (.+)\n", text)[:2]


def test_readme_opens_with_an_install_and_reproduce_command_and_a_test_command() -> None:
    main_job, tests = readme_commands()
    assert "pip install" in main_job and main_job.endswith("l4sim reproduce")
    extras = re.search(r"\.\[([\w,]+)\]", tests)
    assert "pip install" in tests and extras is not None and "test" in extras[1].split(",")


def test_ci_runs_the_readme_test_command() -> None:
    test_command = readme_commands()[1].split(" && ", 2)[2]  # after venv creation/activation
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci


def _python_blocks() -> list[str]:
    text = (ROOT / "README.rst").read_text()
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", text)
    return [textwrap.dedent(b) for b in blocks]


def _cli_examples() -> list[list[str]]:
    text = (ROOT / "README.rst").read_text()
    block = text.split("For example (run by ``tests/test_readme.py``)::\n\n", 1)[1]
    lines = []
    for line in block.splitlines():
        if not line.startswith("    l4sim "):
            break
        lines.append(shlex.split(line)[1:])
    return lines


def test_readme_python_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    (block,) = _python_blocks()
    exec(compile(block, "README.rst", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and "pid=" in out[0]  # the reaped child, then the cache


def test_readme_cli_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    examples = _cli_examples()
    assert len(examples) >= 3
    for argv in examples:
        assert cli.main(argv) == 0, argv
        assert capsys.readouterr().out.strip(), argv


def test_readme_is_a_front_door_of_at_most_200_lines() -> None:
    assert len((ROOT / "README.rst").read_text().splitlines()) <= 200
