"""Verify stays pure software: no backend, keyring or PKCS#11 module, no plugin scan.

Each check runs in a fresh interpreter, because this test process has long
since imported whatever other tests needed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from support import OUR_VECTORS

FORBIDDEN = ("keyring", "pkcs11", "agent_rerun_keyring", "agent_rerun_pkcs11", "hvac",
             "requests", "agent_rerun_vault",
             "agent_rerun.keyfile", "agent_rerun.sshagent")

#: Runs first in the child: record every entry-point lookup, from any import path.
PRELUDE = """
import importlib.metadata, json, sys
calls = []
_real = importlib.metadata.entry_points
def _recording(*args, **kwargs):
    calls.append(repr((args, kwargs)))
    return _real(*args, **kwargs)
importlib.metadata.entry_points = _recording

def report(**extra):
    loaded = sorted(
        name for name in sys.modules
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)
    )
    print(json.dumps({"loaded": loaded, "entry_point_calls": calls, **extra}))
"""


def _run_child(body: str) -> dict:
    code = f"FORBIDDEN = {FORBIDDEN!r}\n" + PRELUDE + textwrap.dedent(body)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_the_backend_distributions_are_visible_to_the_child() -> None:
    """Without installed plugins the purity checks below would prove little; say so."""
    report = _run_child("""
        eps = importlib.metadata.entry_points(group="agent_rerun.signers")
        report(schemes=sorted(ep.name for ep in eps))
    """)
    assert "file" in report["schemes"]
    assert report["entry_point_calls"], "the recorder must see direct calls"


def test_import_and_verify_files_load_no_backend() -> None:
    bundle = OUR_VECTORS / "c1-byte-replay-passes" / "bundle.rr"
    actual = OUR_VECTORS / "c1-byte-replay-passes" / "actual.json"
    report = _run_child(f"""
        import agent_rerun
        after_import = sorted(calls)
        result = agent_rerun.verify_files({str(bundle)!r}, {str(actual)!r})
        report(verified=result.verified, signer=result.signer is not None,
               after_import=after_import)
    """)
    assert report["verified"] is True and report["signer"] is True
    assert report["after_import"] == []
    assert report["entry_point_calls"] == []
    assert report["loaded"] == []


def test_verify_of_every_vector_loads_no_backend() -> None:
    folders = [str(p) for p in sorted(OUR_VECTORS.iterdir()) if (p / "expected.json").is_file()]
    report = _run_child(f"""
        from agent_rerun import verify_files
        from pathlib import Path
        for folder in {folders!r}:
            verify_files(Path(folder) / "bundle.rr", Path(folder) / "actual.json")
        report()
    """)
    assert report["entry_point_calls"] == []
    assert report["loaded"] == []


def test_cli_verify_loads_no_backend() -> None:
    """The ``rerun verify`` command path (config, trust flags) is as pure as the library."""
    folder = OUR_VECTORS / "c1-byte-replay-passes"
    report = _run_child(f"""
        import contextlib, io, os, tempfile
        config = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
        config.close()
        os.environ["RERUN_CONFIG"] = config.name
        sys.argv = ["rerun", "verify", {str(folder / "bundle.rr")!r},
                    {str(folder / "actual.json")!r},
                    "--trusted-key", "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w="]
        from agent_rerun.cli import main
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                main()
        except SystemExit as exit:
            code = exit.code
        os.unlink(config.name)
        report(code=code, verified=json.loads(out.getvalue())["verified"],
               capture="agent_rerun.capture" in sys.modules)
    """)
    assert report["code"] == 0 and report["verified"] is True
    assert report["capture"] is False
    assert report["entry_point_calls"] == []
    assert report["loaded"] == []


#: Everything ``import agent_rerun; verify(...)`` may load of this package: the
#: check itself and the policy it consults (the trust and revocation parsers
#: load only when keys are given). Not capture, not the CLI (and so not click),
#: not a backend. A new import on this path must be added here on purpose.
VERIFY_MODULES = [
    "agent_rerun", "agent_rerun._version", "agent_rerun.b64", "agent_rerun.canonical",
    "agent_rerun.errors", "agent_rerun.fastjcs", "agent_rerun.jsonvalue", "agent_rerun.policy",
    "agent_rerun.pubkey", "agent_rerun.record", "agent_rerun.schema", "agent_rerun.signature",
    "agent_rerun.verify",
]


def test_library_verify_loads_only_what_verifying_needs() -> None:
    folder = OUR_VECTORS / "c1-byte-replay-passes"
    report = _run_child(f"""
        import agent_rerun
        with open({str(folder / "bundle.rr")!r}) as b, open({str(folder / "actual.json")!r}) as a:
            bundle, actual = json.load(b), json.load(a)
        result = agent_rerun.verify(bundle, actual)
        report(verified=result.verified,
               ours=sorted(name for name in sys.modules if name.split(".")[0] == "agent_rerun"),
               click="click" in sys.modules)
    """)
    assert report["verified"] is True
    assert report["ours"] == VERIFY_MODULES
    assert report["click"] is False


def test_quick_cli_verify_loads_no_dataclasses(tmp_path: Path) -> None:
    """``rerun verify BUNDLE ACTUAL`` starts in a fraction of the published CLI's
    time only while its path keeps off click and ``dataclasses`` (with the
    ``inspect``, ``ast`` and ``dis`` it loads): milliseconds of every start (see
    agent_rerun.record). A real command, so the quick path sees real streams."""
    folder = OUR_VECTORS / "c1-byte-replay-passes"
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    env.pop("RERUN_CONFIG", None)
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "agent_rerun", "verify",
                          str(folder / "bundle.rr"), str(folder / "actual.json")],
                         capture_output=True, text=True, env=env, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["verified"] is True
    loaded = {line.rsplit("|", 1)[1].strip() for line in run.stderr.splitlines()
              if line.startswith("import time:")}
    assert "agent_rerun.verify" in loaded, "importtime must list what was loaded"
    assert sorted(loaded & {"dataclasses", "inspect", "ast", "dis", "click"}) == []


def test_capture_is_still_the_function_whatever_is_imported_first() -> None:
    report = _run_child("""
        import agent_rerun.capture
        from agent_rerun import capture, CaptureOptions
        report(kind=type(capture).__name__, options=CaptureOptions.__name__)
    """)
    assert report == {"kind": "function", "options": "CaptureOptions", "loaded": [],
                      "entry_point_calls": []}
