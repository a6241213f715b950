"""A reader that goes away (``tscallbacks plan | head -1``) stops the run quietly, exit 141.

The real program runs in a subprocess whose output is a pipe closed after one line;
the output is several times a pipe's buffer, so the write after the close must fail.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler import cli
from reconciler.cli.main import EXIT_BROKEN_PIPE
from reconciler.core import catalog

SCRIPT = Path(sys.executable).with_name("tscallbacks")
LAUNCHERS = {"console script": [str(SCRIPT)], "python -m": [sys.executable, "-m", "reconciler"]}


def _big_config(path: Path, *, url: str) -> Path:
    """100 accounts x every service: a plan of about a quarter megabyte, several times
    what a pipe holds, so writing goes on after the reader has gone."""
    lines = ["version: 1", "accounts:"]
    for n in range(100):
        lines += [f'  "acct-{n:04d}":', "    callbacks:"]
        for service in catalog.services():
            lines += [f"      {service}:", f"        url: {url}/{n}/{service.lower()}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("THINGSPACE_")}


def _read_one_line_then_close(
    command: list[str], *, cwd: Path, stream: str
) -> tuple[int, bytes, str]:
    """Run ``command`` with ``stream`` (stdout or stderr) a pipe we close after one line;
    the other stream goes to a file. Returns the status, the line, and the file's text."""
    other_file = cwd / "other-stream.txt"
    with other_file.open("wb") as other:
        pipe_out = stream == "stdout"
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE if pipe_out else other,
            stderr=other if pipe_out else subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=_env(),
        )
        pipe = proc.stdout if pipe_out else proc.stderr
        assert pipe is not None
        line = pipe.readline()
        pipe.close()
        status = proc.wait(timeout=120)
    return status, line, other_file.read_text()


@pytest.mark.parametrize("launcher", LAUNCHERS.values(), ids=list(LAUNCHERS))
def test_plan_into_a_closed_pipe_exits_141_silently(tmp_path: Path, launcher: list[str]) -> None:
    config = _big_config(tmp_path / "big.yaml", url="https://hooks.example.com/thingspace")
    status, line, stderr = _read_one_line_then_close(
        [*launcher, "plan", "--simulator", "-c", str(config)], cwd=tmp_path, stream="stdout"
    )
    assert line.startswith(b"Reading m2m, fota, location, diagnostics"), line  # the header
    assert stderr == ""  # no "internal error", no traceback, no "Exception ignored"
    assert status == EXIT_BROKEN_PIPE == 141


def _into_closed_pipe(command: list[str], *, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``command`` with stdout a pipe whose reader is gone before it starts."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            command,
            stdout=write_end,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=_env(),
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize("launcher", LAUNCHERS.values(), ids=list(LAUNCHERS))
def test_schema_into_a_closed_pipe_exits_141_silently(tmp_path: Path, launcher: list[str]) -> None:
    result = _into_closed_pipe([*launcher, "schema"], cwd=tmp_path)
    assert (result.returncode, result.stderr) == (EXIT_BROKEN_PIPE, "")


def test_stdout_is_safe_to_use_after_a_broken_pipe(tmp_path: Path) -> None:
    """Python flushes stdout at exit: once its reader is gone, it must lead nowhere, or
    the last flush fails with a traceback (or "Exception ignored ... BrokenPipeError")."""
    code = (
        "import sys; from reconciler.cli import main; status = main(['schema']); "
        "print('written after main returned'); sys.exit(status)"
    )
    result = _into_closed_pipe([sys.executable, "-c", code], cwd=tmp_path)
    assert (result.returncode, result.stderr) == (EXIT_BROKEN_PIPE, "")


def test_errors_into_a_closed_pipe_exit_141_silently(tmp_path: Path) -> None:
    # Every registration is refused: thousands of error lines, all on stderr.
    config = _big_config(tmp_path / "bad.yaml", url="https://localhost")
    status, line, stdout = _read_one_line_then_close(
        [*LAUNCHERS["python -m"], "validate", "-c", str(config)], cwd=tmp_path, stream="stderr"
    )
    assert b"localhost" in line
    assert stdout == ""
    assert status == EXIT_BROKEN_PIPE


class _ClosedPipe(io.StringIO):
    """An injected stream whose reader is gone: every write fails with EPIPE."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


class _ClosesOnFlush(io.StringIO):
    """Takes writes into a buffer; the pipe turns out closed when it is flushed."""

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


@pytest.mark.parametrize("stdout", [_ClosedPipe, _ClosesOnFlush])
def test_in_process_closed_stdout(stdout: type[io.StringIO]) -> None:
    err = io.StringIO()
    code = cli.main(["schema"], env={}, stdin=io.StringIO(), stdout=stdout(), stderr=err)
    assert code == EXIT_BROKEN_PIPE
    assert err.getvalue() == ""


def test_in_process_closed_stderr() -> None:
    out = io.StringIO()
    code = cli.main(
        ["validate", "-c", "/nonexistent.yaml"],
        env={},
        stdin=io.StringIO(),
        stdout=out,
        stderr=_ClosedPipe(),
    )
    assert code == EXIT_BROKEN_PIPE
    assert out.getvalue() == ""


def test_a_broken_pipe_elsewhere_is_still_a_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only our own output's reader going away is quiet; a socket's EPIPE is not ours."""
    from reconciler.cli.commands import schema

    def run(*_args: object) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(schema, "run", run)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["schema"], env={}, stdin=io.StringIO(), stdout=out, stderr=err)
    assert code == 1
    assert "internal error (BrokenPipeError)" in err.getvalue()
