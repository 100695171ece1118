"""A third-party signer backend plugs in through the entry-point group alone.

The test writes a tiny distribution (a module and its ``.dist-info`` with an
``agent_rerun.signers`` entry point) into a temporary folder and puts that
folder on ``PYTHONPATH``: that is all ``importlib.metadata`` needs to see an
installed package. Nothing in the core names it.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
from samples import SAMPLE_ACTUAL, SAMPLE_STEP
from support import run_cli

BACKEND_MODULE = textwrap.dedent('''
    """Test-only backend: keys derived from the URI's name (a stand-in for a cloud KMS)."""
    import hashlib

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from agent_rerun.errors import SignerError
    from agent_rerun.signer import KeyInfo, SignerBase

    SIGNATURES = []


    class KmsSigner(SignerBase):
        def __init__(self, name):
            seed = hashlib.sha256(name.encode()).digest()
            self._key = Ed25519PrivateKey.from_private_bytes(seed)

        @property
        def public_key(self):
            return self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

        def sign(self, data):
            SIGNATURES.append(len(data))
            return self._key.sign(data)


    class Backend:
        scheme = "testkms"

        def _name(self, uri):
            name = uri.partition(":")[2]
            if not name:
                raise SignerError("testkms: a key name is needed (testkms:NAME)")
            return name

        def load(self, uri, *, prompt=None):
            return KmsSigner(self._name(uri))

        def generate(self, uri, *, force=False, prompt=None):
            signer = self.load(uri)
            return KeyInfo(uri=uri, public_key=signer.public_key, description="test KMS key")

        def list_keys(self, uri, *, prompt=None):
            return [self.generate("testkms:alpha"), self.generate("testkms:beta")]


    backend = Backend()
''')


@pytest.fixture
def plugin_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    (site / "rerun_testkms.py").write_text(BACKEND_MODULE)
    dist_info = site / "rerun_testkms-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: rerun-testkms\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        "[agent_rerun.signers]\ntestkms = rerun_testkms:backend\n")
    monkeypatch.syspath_prepend(str(site))
    import importlib

    importlib.invalidate_caches()
    return site


def test_library_signs_through_an_installed_plugin(plugin_path: Path) -> None:
    from agent_rerun import CaptureOptions, capture, installed_schemes, load_signer, verify

    assert "testkms" in installed_schemes()
    with load_signer("testkms:alice") as signer:
        bundle = capture(SAMPLE_STEP, CaptureOptions(signer=signer))
    import rerun_testkms  # the plugin module, loaded by the registry

    assert rerun_testkms.SIGNATURES, "the plugin's sign() was not used"
    result = verify(bundle, SAMPLE_ACTUAL, trusted_keys=[signer.public_key])
    assert result.verified, result.errors
    assert not verify(bundle, SAMPLE_ACTUAL,
                      trusted_keys=[load_signer("testkms:mallory").public_key]).verified


def test_cli_uses_the_plugin_for_keygen_capture_and_listing(plugin_path: Path,
                                                            tmp_path: Path) -> None:
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(plugin_path),
                                                      os.environ.get("PYTHONPATH")]))}
    step = tmp_path / "step.json"
    step.write_text(json.dumps(SAMPLE_STEP))
    actual = tmp_path / "actual.json"
    actual.write_text(json.dumps(SAMPLE_ACTUAL))

    keygen = run_cli("pubkey", "testkms:alice", "--format", "base64", env=env)
    assert keygen.returncode == 0, keygen.stderr
    public_key = keygen.stdout.strip()

    listed = run_cli("keys", "list", "testkms:", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "testkms:alpha" in listed.stdout and "testkms:beta" in listed.stdout

    bundle = tmp_path / "b.rr"
    captured = run_cli("capture", step, "-o", bundle, "--key", "testkms:alice", env=env)
    assert captured.returncode == 0, captured.stderr
    verified = run_cli("verify", bundle, actual, "--trusted-key", public_key)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.json()["signer"]["public_key"] == public_key


def test_errors_from_a_plugin_are_one_line(plugin_path: Path, tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(plugin_path)}
    run = run_cli("pubkey", "testkms:", env=env)
    assert run.returncode == 3
    assert run.stderr.strip() == "rerun: error: testkms: a key name is needed (testkms:NAME)"


def test_unknown_scheme_lists_what_is_installed(plugin_path: Path) -> None:
    env = {"PYTHONPATH": str(plugin_path)}
    run = run_cli("pubkey", "nosuch:key", env=env)
    assert run.returncode == 3
    assert "no signer backend for scheme 'nosuch'" in run.stderr
    assert "testkms" in run.stderr and "file" in run.stderr
    assert "Traceback" not in run.stderr
