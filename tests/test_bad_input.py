"""Bad input at every edge: the CLI, profile files, trace files, and library calls.

The CLI answers bad input with one error line (argparse: its usage, then one line) and
exit status 2, never a traceback.  Library calls raise ``ValueError`` for a value out of
range, ``TypeError`` for a wrongly typed one, ``ProfileError`` / ``TraceFileError`` for an
unusable file (README, "Guarantees").  What ``test_cli``, ``test_profile`` and
``test_tracefile`` already cover is not repeated here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from actors import BootConfig
from actors._runtime import Runtime
from protocols.ids import ThreadId
from scenarios.cli import main
from scenarios.cost.profile import load_profile
from tests.test_tracefile import good_text

PROFILE_HEAD = 'name = "bad"\n[tlb]\n'


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``l4sim argv``; it must exit 2 with a one-line error and no traceback."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code  # type: ignore[assignment]
    err = capsys.readouterr().err
    assert code == 2, f"l4sim {' '.join(argv)} exited {code}: {err}"
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("l4sim") and "error:" in last, err
    return last


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda t: t[: len(t) // 3], "truncated"),
        (lambda t: t.replace('"version": 1', '"version": 2', 1), "version 2"),
        (lambda t: "\x00\x01 garbage \xff\n", "line 1"),
        (lambda t: "", "empty"),
        (lambda t: "[" * 100_000 + "]" * 100_000 + "\n", "nested too deeply"),
        (lambda t: t.splitlines()[0] + "\n" + "{" + '"a":[' * 50_000 + "\n", "line 2"),
    ],
    ids=["truncated", "wrong-version", "garbage", "empty", "deep-header", "deep-event"],
)
def test_check_refuses_bad_trace_files(
    tmp_path: Path,
    mangle: Callable[[str], str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(mangle(good_text()))
    assert message in run_cli(["check", str(path)], capsys)


def test_reproduce_refuses_an_out_path_that_is_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = tmp_path / "a-file"
    existing.write_text("keep me")
    assert "not a directory" in run_cli(["reproduce", "--out", str(existing)], capsys)
    assert existing.read_text() == "keep me"


def test_check_refuses_binary_and_missing_files_and_directories(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b"\x00\xff\xfe\x80")
    assert "not a text file" in run_cli(["check", str(binary)], capsys)
    assert "cannot read" in run_cli(["check", str(tmp_path / "nope.jsonl")], capsys)
    assert "cannot read" in run_cli(["check", str(tmp_path)], capsys)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('colour = { value = 1, provenance = "assumed" }', "unknown profile key"),
        ('entries = { value = "many", provenance = "assumed" }', "must be a"),
        ('entries = { value = -4, provenance = "assumed" }', "must not be negative"),
        ('entries = { value = 10000000000000000000000000, provenance = "assumed" }', "error"),
        ("entries = 64", "error"),
    ],
    ids=["unknown-key", "wrong-type", "negative", "absurd", "not-a-table"],
)
def test_run_refuses_bad_profile_files(
    tmp_path: Path, body: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(PROFILE_HEAD + body + "\n")
    argv = ["run", "getpid", "--mode", "native", "--profile", str(path)]
    assert message in run_cli(argv, capsys)


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "getpid", "-n", "99999999999999999999"],
        ["run", "fork", "-n", "-1"],
        ["run", "read", "-n", "1.5"],
        ["explore", "--tasks", "99999"],
        ["bench", "--tasks", "99999"],
        ["bench", "--calls", "0x10"],
        ["run", "getpid", "--mode", "native", "--set", "cpu.mhz=1e400"],
        ["run", "getpid", "--mode", "native", "--set", "timer.hz=nan"],
        ["trace", "nosuch"],
        ["check"],
    ],
)
def test_bad_numbers_and_names_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    run_cli(argv, capsys)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: BootConfig(task_count=1), ValueError),
        (lambda: BootConfig(task_count=10**9), ValueError),
        (lambda: BootConfig(strategy="bogus"), ValueError),
        (lambda: BootConfig(timeout=0), ValueError),
        (lambda: BootConfig(linux=-1), ValueError),
        (lambda: BootConfig(modules=(1,) * 3000), ValueError),
        (lambda: Runtime(timeout=-1.0), ValueError),
        (lambda: ThreadId(-1, 0, 0), ValueError),
        (lambda: ThreadId(5, 0, 1 << 20), ValueError),
        (lambda: ThreadId("5", 0, 0), TypeError),  # type: ignore[arg-type]
        (lambda: load_profile(overrides=("cpu.mhz=-5",)), Exception),
    ],
)
def test_library_calls_with_invalid_arguments_raise_the_documented_exception(
    call: Callable[[], object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        call()
