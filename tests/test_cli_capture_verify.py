"""``rerun capture`` / ``sign`` / ``verify`` as a user runs them: real subprocesses."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
import pytest
from samples import sample_step
from support import OUR_VECTORS, CliResult, run_cli

from agent_rerun import __version__, encode_embedding, jcs_bytes
from agent_rerun.cli import cli

C1 = OUR_VECTORS / "c1-byte-replay-passes"


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixed test key, copied with owner-only permissions (the file backend warns
    about group-readable keys, and that warning would muddy the stderr checks)."""
    path = tmp_path_factory.mktemp("key") / "test-key.json"
    path.write_bytes((OUR_VECTORS / "test-key.json").read_bytes())
    path.chmod(0o600)
    return path


def base_step() -> dict[str, Any]:
    """The sample step, its input conversation ending with the assistant's "hi"."""
    step = sample_step()
    step["inputs"]["messages"].append({"role": "assistant", "content": "hi"})
    return step


def write_json(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value, indent=2), encoding="utf-8")
    return path


def assert_clean_failure(run: CliResult, code: int = 1, *words: str) -> None:
    """Failed with ``code``, one 'rerun: ...' line on stderr, no traceback."""
    assert run.returncode == code, (run.returncode, run.stderr)
    assert "Traceback" not in run.stderr
    lines = run.stderr.splitlines()
    assert lines and all(line.startswith(("rerun: ", "Usage:", "Try ", "Error:", ""))
                         for line in lines), run.stderr
    for word in words:
        assert word in run.stderr, run.stderr


# ------------------------------------------------------------------ capture output


def test_capture_writes_exact_jcs_bytes(key: Path, tmp_path: Path) -> None:
    step = write_json(tmp_path / "step.json", base_step())
    out = tmp_path / "bundle.rr"
    run = run_cli("capture", step, "-o", out, "--key", key)
    assert run.returncode == 0, run.stderr
    data = out.read_bytes()
    assert data == (C1 / "bundle.rr").read_bytes()  # = the published C1 bundle
    assert not data.endswith(b"\n")
    assert data == jcs_bytes(json.loads(data))
    assert run.stdout == ""
    assert oct(out.stat().st_mode & 0o777) == oct(0o644)


def test_capture_stdin_to_stdout(key: Path, tmp_path: Path) -> None:
    run = run_cli("capture", "-", "-o", "-", "--key", key,
                  input=json.dumps(base_step()))
    assert run.returncode == 0, run.stderr
    assert run.stdout_bytes == (C1 / "bundle.rr").read_bytes()


def test_capture_unsigned(tmp_path: Path) -> None:
    run = run_cli("capture", "-", "-o", "-", "--unsigned", input=json.dumps(base_step()))
    assert run.returncode == 0, run.stderr
    bundle = json.loads(run.stdout_bytes)
    assert "signature" not in bundle
    assert run.stdout_bytes == jcs_bytes(bundle)


def test_capture_without_key_or_config_is_unsigned() -> None:
    run = run_cli("capture", "-", "-o", "-", input=json.dumps(base_step()))
    assert run.returncode == 0, run.stderr
    assert "signature" not in json.loads(run.stdout_bytes)


def test_unsigned_and_key_contradict(key: Path, tmp_path: Path) -> None:
    run = run_cli("capture", "-", "-o", "-", "--unsigned", "--key", key,
                  input=json.dumps(base_step()))
    assert run.returncode != 0 and run.stdout == ""
    assert "Traceback" not in run.stderr and "--unsigned" in run.stderr


def test_capture_replaces_an_existing_bundle(key: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle.rr"
    out.write_bytes(b"old contents")
    step = write_json(tmp_path / "step.json", base_step())
    assert run_cli("capture", step, "-o", out, "--key", key).returncode == 0
    assert out.read_bytes() == (C1 / "bundle.rr").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle.rr", "step.json"]


@pytest.mark.parametrize(
    ("step_bytes", "words"),
    [
        (json.dumps({**base_step(), "surprise": 1}).encode(), ("step.json", "surprise")),
        (json.dumps({**base_step(), "sampling": {"temperature": True, "top_p": 1}}).encode(),
         ("step.sampling.temperature",)),
        # A float64 reader would read this seed as 12345678901234568.
        (json.dumps({**base_step(), "sampling": {"temperature": 0, "top_p": 1,
                                                 "seed": 12345678901234567}}).encode(),
         ("sampling.seed", "12345678901234567")),
        (b'{"model": 1, "model": 2}', ("duplicate",)),
        (b"\x00\xff garbage", ("UTF-8",)),
        (b"[" * 5000 + b"]" * 5000, ("nested",)),
        (b"", ("step.json",)),
    ],
)
def test_failed_capture_leaves_existing_output_untouched(
    key: Path, tmp_path: Path, step_bytes: bytes, words: tuple[str, ...]
) -> None:
    out = tmp_path / "bundle.rr"
    out.write_bytes(b"precious")
    step = tmp_path / "step.json"
    step.write_bytes(step_bytes)
    run = run_cli("capture", step, "-o", out, "--key", key)
    assert_clean_failure(run, 1, *words)
    assert out.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle.rr", "step.json"]


def test_failed_capture_creates_no_output(tmp_path: Path) -> None:
    step = write_json(tmp_path / "step.json", {**base_step(), "tolerance": {"level": "semantic"}})
    run = run_cli("capture", step, "-o", tmp_path / "bundle.rr")
    assert_clean_failure(run, 1, "step.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step.json"]


@pytest.mark.parametrize("kind", ["random-bytes", "directory", "missing", "deep", "bom"])
def test_capture_garbage_inputs(tmp_path: Path, kind: str) -> None:
    step = tmp_path / "step.json"
    if kind == "random-bytes":
        step.write_bytes(bytes(range(255, -1, -1)) * 3)
    elif kind == "directory":
        step.mkdir()
    elif kind == "deep":
        step.write_bytes(b'{"a":' * 100_000 + b"1" + b"}" * 100_000)
    elif kind == "bom":
        step.write_bytes(b"\xef\xbb\xbf" + json.dumps(base_step()).encode())
    run = run_cli("capture", step, "-o", tmp_path / "out.rr")
    assert_clean_failure(run, 1, "step.json")
    assert not (tmp_path / "out.rr").exists()


def test_capture_with_unusable_key_exits_3(tmp_path: Path) -> None:
    step = write_json(tmp_path / "step.json", base_step())
    run = run_cli("capture", step, "-o", tmp_path / "b.rr", "--key", tmp_path / "no-key.json")
    assert_clean_failure(run, 3)
    assert not (tmp_path / "b.rr").exists()


# ------------------------------------------------------------------ batch capture


def test_batch_capture_into_a_folder(key: Path, tmp_path: Path) -> None:
    semantic = {**base_step(), "expected": {"semantic_embedding": encode_embedding([1, 0])},
                "tolerance": {"level": "semantic", "threshold": 0.9}}
    steps = [write_json(tmp_path / "first.json", base_step()),
             write_json(tmp_path / "second.step.json", semantic)]
    out = tmp_path / "bundles"
    run = run_cli("capture", *steps, "-o", out, "--key", key)
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in out.iterdir()) == ["first.rr", "second.step.rr"]
    assert (out / "first.rr").read_bytes() == (C1 / "bundle.rr").read_bytes()
    second = json.loads((out / "second.step.rr").read_bytes())
    assert second["tolerance"]["level"] == "semantic" and "signature" in second


def test_single_step_into_existing_folder(tmp_path: Path) -> None:
    step = write_json(tmp_path / "only.json", base_step())
    (tmp_path / "out").mkdir()
    run = run_cli("capture", step, "-o", tmp_path / "out", "--unsigned")
    assert run.returncode == 0, run.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["only.rr"]


def test_batch_goes_on_after_a_bad_step(tmp_path: Path) -> None:
    good = write_json(tmp_path / "good.json", base_step())
    bad = write_json(tmp_path / "bad.json", {"not": "a step"})
    out = tmp_path / "out"
    run = run_cli("capture", bad, good, "-o", out, "--unsigned")
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "bad.json" in run.stderr and "1 of 2" in run.stderr
    assert [p.name for p in out.iterdir()] == ["good.rr"]


def test_batch_refuses_colliding_names_and_stdout(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = write_json(tmp_path / "a" / "step.json", base_step())
    two = write_json(tmp_path / "b" / "step.json", base_step())
    run = run_cli("capture", one, two, "-o", tmp_path / "out", "--unsigned")
    assert_clean_failure(run, 1, "step.rr")
    assert not list((tmp_path / "out").glob("*.rr"))
    # Several steps to stdout is a usage error (click's exit code 2), caught before any work.
    assert_clean_failure(run_cli("capture", one, two, "-o", "-", "--unsigned"), 2, "folder")


# ------------------------------------------------------------------ sign


def test_sign_in_place_matches_signed_capture(key: Path, tmp_path: Path) -> None:
    step = write_json(tmp_path / "step.json", base_step())
    bundle = tmp_path / "b.rr"
    assert run_cli("capture", step, "-o", bundle, "--unsigned").returncode == 0
    run = run_cli("sign", bundle, "--key", key)
    assert run.returncode == 0, run.stderr
    assert bundle.read_bytes() == (C1 / "bundle.rr").read_bytes()


def test_sign_resigns_an_edited_bundle(key: Path, tmp_path: Path) -> None:
    edited = OUR_VECTORS / "c3-mutated-bundle-rejected" / "bundle.rr"
    out = tmp_path / "resigned.rr"
    run = run_cli("sign", edited, "--key", key, "-o", out)
    assert run.returncode == 0, run.stderr
    verified = run_cli("verify", out, C1 / "actual.json")
    assert verified.returncode == 0, verified.stdout


def test_sign_refuses_invalid_bundle_and_missing_key(key: Path, tmp_path: Path) -> None:
    bad = OUR_VECTORS / "strictness-extra-bundle-field" / "bundle.rr"
    assert_clean_failure(run_cli("sign", bad, "--key", key, "-o", tmp_path / "x.rr"), 1,
                         "MYSTERY")
    assert not (tmp_path / "x.rr").exists()
    copy = tmp_path / "b.rr"
    copy.write_bytes((C1 / "bundle.rr").read_bytes())
    assert_clean_failure(run_cli("sign", copy), 3, "key")  # no key: a key problem, exit 3
    assert copy.read_bytes() == (C1 / "bundle.rr").read_bytes()


# ------------------------------------------------------------------ verify


def test_verify_output_format() -> None:
    run = run_cli("verify", C1 / "bundle.rr", C1 / "actual.json")
    assert run.returncode == 0 and run.stderr == ""
    assert run.stdout.endswith("}\n") and run.stdout.startswith('{\n  "verified": true')
    result = run.json()
    assert result["verified"] is True and result["errors"] == [] and result["warnings"] == []
    assert result["signer"]["public_key"] == "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w="


def test_verify_reads_stdin() -> None:
    run = run_cli("verify", "-", C1 / "actual.json", input=(C1 / "bundle.rr").read_bytes())
    assert run.returncode == 0, run.stdout
    run = run_cli("verify", C1 / "bundle.rr", "-", input=b'{"inputs": 1}')
    assert run.returncode == 1
    assert run.json()["errors"][0].startswith("SchemaViolation:actual")


@pytest.mark.parametrize("kind", ["random-bytes", "directory", "missing", "deep", "empty",
                                  "number"])
@pytest.mark.parametrize("which", ["bundle", "actual"])
def test_verify_garbage_inputs(tmp_path: Path, kind: str, which: str) -> None:
    junk = tmp_path / "junk.json"
    if kind == "random-bytes":
        junk.write_bytes(os.urandom(512))
    elif kind == "directory":
        junk.mkdir()
    elif kind == "deep":
        junk.write_bytes(b"[" * 100_000 + b"]" * 100_000)
    elif kind == "empty":
        junk.write_bytes(b"")
    elif kind == "number":
        junk.write_bytes(b"1e999999")
    args = (junk, C1 / "actual.json") if which == "bundle" else (C1 / "bundle.rr", junk)
    run = run_cli("verify", *args)
    assert_clean_failure(run, 1, "rerun: not verified")
    result = run.json()
    assert result["verified"] is False
    assert result["errors"][0].startswith(f"SchemaViolation:{which}")
    if kind != "number":
        assert "junk.json" in result["errors"][0]


# ------------------------------------------------------------------ usage, help, version


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("capture",),
        ("capture", "step.json"),  # no -o
        ("capture", "step.json", "-o"),
        ("verify", "bundle.rr"),
        ("verify", "a", "b", "c"),
        ("verify", "a", "b", "--no-such-flag"),
        ("no-such-command",),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    run = run_cli(*args)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    if args:
        assert "Error:" in run.stderr


def test_version() -> None:
    run = run_cli("--version")
    assert run.returncode == 0
    assert run.stdout.strip() == f"rerun, version {__version__}"


def _command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            paths.extend(_command_paths(command, (*prefix, name)))
        else:
            paths.append((*prefix, name))
    return paths


@pytest.mark.parametrize("path", _command_paths(cli), ids=lambda p: " ".join(p) or "rerun")
def test_help_on_every_command(path: tuple[str, ...]) -> None:
    for flag in ("--help", "-h"):
        run = run_cli(*path, flag)
        assert run.returncode == 0, run.stderr
        assert run.stdout.startswith("Usage: rerun"), run.stdout
        assert "Traceback" not in run.stderr


def test_verify_stderr_stays_one_line_for_hostile_field_names(tmp_path: Path) -> None:
    bundle = json.loads((C1 / "bundle.rr").read_bytes())
    bundle["runtime"]["tool_versions"] = {"py\nthon": 3}
    path = tmp_path / "b.rr"
    path.write_text(json.dumps(bundle))
    run = run_cli("verify", path, C1 / "actual.json")
    assert run.returncode == 1
    assert len(run.stderr.splitlines()) == 1, run.stderr
    assert str(path) in run.stderr  # the file is named, as for reading errors
