"""Every conformance vector (ours and the published ones) through the library and the CLI.

Also: our generator reproduces the published bundles byte for byte, and the
committed vectors are exactly what the generator writes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support import (
    OUR_VECTORS,
    PUBLISHED_VECTORS,
    REPO,
    require,
    run_cli,
    vector_dirs,
    vector_matches,
)

from agent_rerun import CaptureOptions, capture, jcs_bytes, sha256_hex
from agent_rerun.ijson import loads_ijson
from agent_rerun.verify import VerifyResult, verify_files

OURS = vector_dirs(OUR_VECTORS)
PUBLISHED = vector_dirs(PUBLISHED_VECTORS)
#: The published suite's folder names, fixed here so a missing ../shared cannot shrink the list.
PUBLISHED_NAMES = (
    "c1-byte-replay-passes",
    "c2-below-threshold-rejected",
    "c2-semantic-replay-passes",
    "c3-mutated-bundle-rejected",
    "c4-messages-mismatch-rejected",
    "embedding-dim-mismatch-rejected",
    "fingerprint-drift-warning",
    "schema-violation-rerun-version",
    "strictness-extra-bundle-field",
    "strictness-extra-inputs-field",
    "structural-unsupported",
)


def _expected(folder: Path) -> dict:
    return json.loads((folder / "expected.json").read_text(encoding="utf-8"))


def _param(folders: list[Path], prefix: str) -> list:
    return [pytest.param(folder, id=f"{prefix}/{folder.name}") for folder in folders]


ALL_VECTORS = _param(OURS, "ours") + _param(PUBLISHED, "published")


def test_vector_sets_are_present() -> None:
    """Guards the parametrized tests below against silently running on nothing."""
    assert len(OURS) >= len(PUBLISHED_NAMES) + 10
    require(bool(PUBLISHED), f"published conformance vectors not found at {PUBLISHED_VECTORS}")
    assert sorted(p.name for p in PUBLISHED) == sorted(PUBLISHED_NAMES)


def test_ours_cover_every_stricter_rule() -> None:
    names = {folder.name for folder in OURS}
    for rule in ("malleable-base64-signature", "wrong-length-pubkey", "small-order-pubkey",
                 "duplicate-key-in-bundle", "nan-threshold", "zero-vector",
                 "integer-beyond-2-53", "non-canonical-base64-embedding", "lone-surrogate",
                 "deep-nesting", "null-transcript-byte-passes",
                 "null-transcript-beside-embedding", "identical-embeddings-threshold-1",
                 "integral-float-1e16", "integer-2-60", "unsafe-integer-in-actual",
                 "float-seed-written-as-integer"):
        assert any(rule in name for name in names), rule
    assert set(PUBLISHED_NAMES) <= names


@pytest.mark.parametrize("folder", ALL_VECTORS)
def test_vector_through_library(folder: Path) -> None:
    expected = _expected(folder)
    result = verify_files(folder / "bundle.rr", folder / "actual.json")
    assert isinstance(result, VerifyResult)
    assert result.verified is (not result.errors)
    assert vector_matches(expected, result.to_json()) == [], result


@pytest.mark.parametrize("folder", ALL_VECTORS)
def test_vector_through_cli(folder: Path) -> None:
    expected = _expected(folder)
    run = run_cli("verify", folder / "bundle.rr", folder / "actual.json")
    assert "Traceback" not in run.stderr
    assert run.returncode == (0 if expected["verified"] else 1), run.stderr
    output = run.json()
    assert set(output) >= {"verified", "errors", "warnings"}
    assert vector_matches(expected, output) == [], output
    if not expected["verified"]:
        # One line on stderr saying why, beside the JSON on stdout.
        assert run.stderr.startswith("rerun: ") and run.stderr.count("\n") == 1, run.stderr


CAPTURED = [pytest.param(folder, id=folder.name) for folder in OURS
            if (folder / "step.json").is_file()]


def test_capture_vectors_are_present() -> None:
    assert len(CAPTURED) >= 5


@pytest.mark.parametrize("folder", CAPTURED)
def test_vector_step_captures_to_its_bundle_through_library(folder: Path) -> None:
    """A vector with a step.json pins what capture writes, not only what verify says."""
    step = loads_ijson((folder / "step.json").read_bytes())
    bundle = capture(step, CaptureOptions(signing_key=b"\x01" * 32))
    assert jcs_bytes(bundle) == (folder / "bundle.rr").read_bytes()


@pytest.mark.parametrize("folder", CAPTURED)
def test_vector_step_captures_to_its_bundle_through_cli(folder: Path, tmp_path: Path) -> None:
    key = tmp_path / "test-key.json"
    key.write_bytes((OUR_VECTORS / "test-key.json").read_bytes())
    key.chmod(0o600)
    run = run_cli("capture", folder / "step.json", "-o", tmp_path / "out.rr", "--key", key)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out.rr").read_bytes() == (folder / "bundle.rr").read_bytes()


def test_null_transcript_vectors_hash_null() -> None:
    """The reference hashes a null transcript, beside an embedding too (issue 10)."""
    null_hash = sha256_hex(b"null")
    for name in ("ours-null-transcript-byte-passes", "ours-null-transcript-beside-embedding"):
        bundle = json.loads((OUR_VECTORS / name / "bundle.rr").read_bytes())
        assert bundle["expected"]["transcript_sha256"] == null_hash, name


def test_number_domain_vectors_spell_what_they_claim() -> None:
    """The files carry the very tokens the rules are about, not a re-encoding of them."""
    big = OUR_VECTORS / "ours-integral-float-1e16-in-message"
    assert b'"n": 1e16' in (big / "step.json").read_bytes()
    assert b'"n": 10000000000000000' in (big / "actual.json").read_bytes()
    seed = OUR_VECTORS / "ours-float-seed-written-as-integer"
    assert b'"seed": 42.0' in (seed / "step.json").read_bytes()
    assert b'"seed":42,' in (seed / "bundle.rr").read_bytes()
    assert b'"seed":1152921504606846976' in (
        OUR_VECTORS / "ours-integer-2-60-in-bundle" / "bundle.rr").read_bytes()
    assert b"12345678901234567" in (
        OUR_VECTORS / "ours-unsafe-integer-in-actual" / "actual.json").read_bytes()


@pytest.mark.parametrize("name", PUBLISHED_NAMES)
def test_generated_bundle_is_byte_identical_to_published(name: str) -> None:
    published = PUBLISHED_VECTORS / name / "bundle.rr"
    require(published.is_file(), f"published vector {published} not found")
    assert (OUR_VECTORS / name / "bundle.rr").read_bytes() == published.read_bytes()


@pytest.mark.parametrize("name", PUBLISHED_NAMES)
def test_generated_actual_is_byte_identical_to_published(name: str) -> None:
    published = PUBLISHED_VECTORS / name / "actual.json"
    require(published.is_file(), f"published vector {published} not found")
    assert (OUR_VECTORS / name / "actual.json").read_bytes() == published.read_bytes()


def test_generated_test_key_matches_published() -> None:
    published = PUBLISHED_VECTORS / "test-key.json"
    require(published.is_file(), f"published test key {published} not found")
    ours = json.loads((OUR_VECTORS / "test-key.json").read_text())
    theirs = json.loads(published.read_text())
    assert (ours["privateKey"], ours["publicKey"]) == (theirs["privateKey"], theirs["publicKey"])


def test_generator_check_passes() -> None:
    run = subprocess.run([sys.executable, str(REPO / "vectors" / "generate.py"), "--check"],
                         capture_output=True, text=True, check=False, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "up to date" in run.stdout


def test_generator_check_detects_drift(tmp_path: Path) -> None:
    """--check must be able to fail: a changed, a missing and a stray file are all reported."""
    sys.path.insert(0, str(REPO / "vectors"))
    keep, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ in vectors/
    try:
        import generate
    finally:
        sys.path.remove(str(REPO / "vectors"))
        sys.dont_write_bytecode = keep
    assert generate.write(tmp_path) > 0
    assert generate.differences(tmp_path) == []
    assert generate.write(tmp_path) == 0  # idempotent
    (tmp_path / "c1-byte-replay-passes" / "bundle.rr").write_bytes(b"{}")
    (tmp_path / "c3-mutated-bundle-rejected" / "actual.json").unlink()
    stray = tmp_path / "ours-stray"
    stray.mkdir()
    (stray / "expected.json").write_text("{}")
    problems = generate.differences(tmp_path)
    assert "differs: c1-byte-replay-passes/bundle.rr" in problems
    assert "missing: c3-mutated-bundle-rejected/actual.json" in problems
    assert "stray vector folder: ours-stray" in problems


def test_require_skips_locally_but_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    require(True, "present")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="gone"):
        require(False, "gone")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="gone"):
        require(False, "gone")
