"""Issue 9 item 11 through the CLI: inputs are read with a bound; no command hangs on one.

Before: a FIFO as ``--revoked-keys``, trust file, key file, step or actual record
blocked forever when nobody wrote it, and ``/dev/zero`` or a huge file was read
whole. Now (agent_rerun/inputs.py, docs/inputs.md) a FIFO or ``<(...)`` is read
as a stream with an idle timeout, and every input has a size limit.
The CLI runs are subprocesses with a timeout, so a hang fails the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from samples import SAMPLE_ACTUAL, SAMPLE_STEP
from support import OUR_VECTORS, CliResult, run_cli

# Nothing from agent_rerun.inputs: these runs must work (and fail) on a tree without it.
TIMEOUT_ENV = "RERUN_INPUT_TIMEOUT"
KEY_FILE_LIMIT = 1024 * 1024

EXIT_FAILED = 1
EXIT_KEY = 3
#: Short, so a test of "nobody writes" takes a second, not the default 30.
FAST = {TIMEOUT_ENV: "1"}


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "step.json").write_text(json.dumps(SAMPLE_STEP))
    (tmp_path / "actual.json").write_text(json.dumps(SAMPLE_ACTUAL))
    key = tmp_path / "key.json"
    key.write_bytes((OUR_VECTORS / "test-key.json").read_bytes())
    key.chmod(0o600)
    done = run_cli("capture", tmp_path / "step.json", "-o", tmp_path / "step.rr",
                   "--key", key)
    assert done.returncode == 0, done.stderr
    os.mkfifo(tmp_path / "silent.fifo")
    return tmp_path


def one_line(done: CliResult, code: int, *says: str) -> str:
    """Exit ``code``, one ``rerun:`` line on stderr saying each of ``says``, no traceback."""
    stderr = done.stderr
    assert done.returncode == code, (done.returncode, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rerun: "), stderr
    assert "Traceback" not in stderr
    for text in says:
        assert text in lines[0], lines[0]
    return lines[0]


SILENT = "nothing was written to it for 1 seconds"


@pytest.mark.parametrize(
    ("args", "code", "what"),
    [
        (["verify", "step.rr", "actual.json", "--revoked-keys", "silent.fifo"],
         EXIT_FAILED, "revocation file"),
        (["verify", "step.rr", "actual.json", "--trusted-keys", "silent.fifo"],
         EXIT_FAILED, "trust file"),
        (["verify", "step.rr", "silent.fifo"], EXIT_FAILED, "silent.fifo"),
        (["verify", "silent.fifo", "actual.json"], EXIT_FAILED, "silent.fifo"),
        (["verify", "--batch", "silent.fifo"], EXIT_FAILED, "manifest"),
        (["capture", "silent.fifo", "-o", "out.rr", "--unsigned"], EXIT_FAILED, "step record"),
        (["capture", "step.json", "-o", "out.rr", "--key", "silent.fifo"], EXIT_KEY,
         "key file"),
    ],
)
def test_a_fifo_nobody_writes_ends_with_one_line(
    files: Path, args: list[str], code: int, what: str
) -> None:
    started = time.monotonic()
    done = run_cli(*args, cwd=files, env=FAST, timeout=60)
    assert time.monotonic() - started < 30
    one_line(done, code, "silent.fifo", what, SILENT)
    assert not (files / "out.rr").exists()


def test_a_fifo_config_nobody_writes_ends_with_one_line(files: Path) -> None:
    done = run_cli("verify", "step.rr", "actual.json", cwd=files, timeout=60,
                   env={**FAST, "RERUN_CONFIG": str(files / "silent.fifo")})
    one_line(done, EXIT_FAILED, "silent.fifo", "config file", SILENT)


def test_process_substitution_is_read_as_a_stream(files: Path) -> None:
    """``<(...)`` is a pipe: read it to its end, however slowly the writer starts."""
    rerun = f"'{sys.executable}' -m agent_rerun"
    pub = json.loads((OUR_VECTORS / "test-key.json").read_text())["publicKey"]
    script = (f"{rerun} verify <(sleep 0.5; cat step.rr) <(cat actual.json) "
              f"--trusted-keys <(echo '{pub} test') --revoked-keys <(true)")
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=files,
                          timeout=60, stdin=subprocess.DEVNULL,
                          env={**os.environ, **FAST})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["verified"] is True


def test_a_fifo_written_after_a_pause_is_read(files: Path) -> None:
    """The idle timeout counts silence, not total time: a writer that comes is waited for."""
    fifo = files / "late.fifo"
    os.mkfifo(fifo)

    def write_late() -> None:
        time.sleep(0.3)
        with open(fifo, "wb") as handle:
            handle.write((files / "actual.json").read_bytes())

    writer = threading.Thread(target=write_late)
    writer.start()
    done = run_cli("verify", "step.rr", fifo, cwd=files, env={TIMEOUT_ENV: "10"}, timeout=60)
    writer.join()
    assert done.returncode == 0, done.stderr


def test_a_key_file_over_its_limit_is_refused_before_parsing(files: Path) -> None:
    big = files / "big.key"
    big.write_bytes(b"-----BEGIN PRIVATE KEY-----\n" + b"A" * (KEY_FILE_LIMIT + 10))
    big.chmod(0o600)
    done = run_cli("capture", "step.json", "-o", "out.rr", "--key", big, cwd=files)
    one_line(done, EXIT_KEY, f"{big}: key file is larger than 1 MiB")
    done = run_cli("capture", "step.json", "-o", "out.rr", "--key", "/dev/zero", cwd=files)
    one_line(done, EXIT_KEY, "/dev/zero: key file is larger than 1 MiB")
    assert not (files / "out.rr").exists()


def test_a_trust_file_from_dev_zero_is_refused(files: Path) -> None:
    done = run_cli("verify", "step.rr", "actual.json", "--trusted-keys", "/dev/zero",
                   cwd=files, timeout=60)
    one_line(done, EXIT_FAILED, "/dev/zero: trust file is larger than 64 MiB")


