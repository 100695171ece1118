"""Batch verify: pairing rules, manifests, bad pairs, processes, and the CLI's JSON Lines."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support import OUR_VECTORS, run_cli

from agent_rerun import CaptureOptions, capture, jcs_bytes
from agent_rerun.batch import Pair, pairs_from, verify_batch, verify_pairs
from agent_rerun.cli import cli
from agent_rerun.policy import make_policy

C1 = OUR_VECTORS / "c1-byte-replay-passes"


KEY = bytes([1]) * 32


def _step(index: int) -> dict[str, Any]:
    return {
        "model": {"vendor": "anthropic", "id": "claude-opus-4-7"},
        "sampling": {"temperature": 0, "top_p": 1, "seed": index},
        "inputs": {"system_prompt": "you are a helpful assistant",
                   "messages": [{"role": "user", "content": f"say hi #{index} 😀"}]},
        "runtime": {"class": "cloud"},
        "expected": {"transcript": {"messages": [{"role": "assistant", "content": "hi"}]}},
        "tolerance": {"level": "byte"},
    }


def _actual(step: dict[str, Any]) -> dict[str, Any]:
    return {"inputs": copy.deepcopy(step["inputs"]),
            "output": {"transcript": step["expected"]["transcript"]}}


def _write_pair(folder: Path, name: str, index: int, actual_suffix: str = ".actual.json",
                tamper: bool = False) -> None:
    step = _step(index)
    (folder / f"{name}.rr").write_bytes(jcs_bytes(capture(step, CaptureOptions(signing_key=KEY))))
    actual = _actual(step)
    if tamper:
        actual["inputs"]["messages"][0]["content"] = "something else"
    (folder / f"{name}{actual_suffix}").write_text(json.dumps(actual), encoding="utf-8")


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """a (verifies), b (verifies, NAME.json), c (tampered), d (no actual), e (not JSON)."""
    _write_pair(tmp_path, "a", 1)
    _write_pair(tmp_path, "b", 2, actual_suffix=".json")
    _write_pair(tmp_path, "c", 3, tamper=True)
    _write_pair(tmp_path, "d", 4, actual_suffix=".unused")
    (tmp_path / "e.rr").write_text("{not json", encoding="utf-8")
    (tmp_path / "e.actual.json").write_text("{}", encoding="utf-8")
    (tmp_path / "stray.json").write_text("{}", encoding="utf-8")  # no bundle: not a pair
    return tmp_path


def _by_name(results: Any) -> dict[str, Any]:
    return {r.pair.name: r for r in results}


def test_folder_pairs_by_name_in_name_order(corpus: Path) -> None:
    pairs = pairs_from(corpus)
    assert [p.name for p in pairs] == ["a", "b", "c", "d", "e"]
    assert pairs[0].actual == str(corpus / "a.actual.json")
    assert pairs[1].actual == str(corpus / "b.json")
    assert pairs[3].actual is None and pairs[3].problem is not None


def test_actual_json_wins_over_plain_json(tmp_path: Path) -> None:
    _write_pair(tmp_path, "x", 1)
    _write_pair(tmp_path, "x", 2, actual_suffix=".json")  # overwrites x.rr with step 2
    (tmp_path / "x.actual.json").write_text(json.dumps(_actual(_step(1))), encoding="utf-8")
    [pair] = pairs_from(tmp_path)
    assert pair.actual == str(tmp_path / "x.actual.json")
    [result] = verify_batch(tmp_path)
    assert not result.verified  # step 1's actual against step 2's bundle


def test_bad_pairs_are_reported_and_the_run_goes_on(corpus: Path) -> None:
    results = _by_name(verify_batch(corpus))
    assert results["a"].verified and results["b"].verified
    assert results["c"].result.errors == ["InputHashMismatch:messages_sha256"]
    assert results["d"].result.errors[0].startswith("MissingActual:")
    assert results["e"].result.errors[0].startswith("SchemaViolation:bundle:")
    assert "e.rr" in results["e"].result.errors[0]


def test_jobs_give_the_same_results_in_the_same_order(corpus: Path) -> None:
    serial = [r.to_json() for r in verify_batch(corpus)]
    parallel = [r.to_json() for r in verify_batch(corpus, jobs=2)]
    assert parallel == serial


def test_policy_reaches_every_pair(corpus: Path) -> None:
    results = _by_name(verify_batch(corpus, jobs=2, policy=make_policy([])))
    assert results["a"].result.errors[0].startswith("UntrustedSigner:")


def test_text_manifest(corpus: Path, tmp_path: Path) -> None:
    sub = tmp_path / "lists"
    sub.mkdir()
    manifest = sub / "pairs.txt"
    manifest.write_text(
        "# bundle<TAB>actual, paths relative to this file\n"
        "\n"
        "../a.rr\t../a.actual.json\n"
        f"{corpus / 'c.rr'}   {corpus / 'c.actual.json'}\n"
        "only-one-column\n",
        encoding="utf-8",
    )
    results = list(verify_batch(manifest))
    assert [r.pair.name for r in results] == ["a", "c", f"{manifest}:5"]
    assert [r.verified for r in results] == [True, False, False]
    assert results[2].result.errors[0].startswith(f"BadManifestLine:{manifest}:5:")


def test_json_lines_manifest(corpus: Path) -> None:
    manifest = corpus / "pairs.jsonl"
    manifest.write_text(
        '{"bundle": "a.rr", "actual": "a.actual.json", "name": "first"}\n'
        '{"bundle": "b.rr", "actual": "b.json"}\n'
        '{"bundle": "a.rr"}\n'
        '[1, 2]\n'
        '{"bundle": "a.rr", "actual": "a.actual.json", "extra": 1}\n',
        encoding="utf-8",
    )
    results = list(verify_batch(manifest))
    assert [r.pair.name for r in results[:2]] == ["first", "b"]
    assert [r.verified for r in results] == [True, True, False, False, False]
    assert all(r.result.errors[0].startswith("BadManifestLine:") for r in results[2:])


def test_missing_actual_file_in_manifest_is_a_failed_pair(corpus: Path) -> None:
    manifest = corpus / "m.txt"
    manifest.write_text("a.rr nowhere.json\na.rr a.actual.json\n", encoding="utf-8")
    results = list(verify_batch(manifest))
    assert results[0].result.errors[0].startswith("SchemaViolation:actual:")
    assert results[1].verified


def test_verify_pairs_accepts_pairs_directly(corpus: Path) -> None:
    pair = Pair("mine", str(corpus / "a.rr"), str(corpus / "a.actual.json"))
    [result] = verify_pairs([pair])
    assert result.to_json()["name"] == "mine" and result.verified


# ------------------------------------------------------------------ CLI


def _run(args: list[str]) -> Any:
    return CliRunner().invoke(cli, args, prog_name="rerun")


def test_cli_batch_prints_json_lines_and_a_summary(corpus: Path) -> None:
    result = _run(["verify", "--batch", str(corpus), "--jobs", "2"])
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["name"] for line in lines] == ["a", "b", "c", "d", "e"]
    assert [line["verified"] for line in lines] == [True, True, False, False, False]
    assert {"bundle", "actual", "errors", "warnings"} <= lines[0].keys()
    # Not a terminal: no progress bar, only the summary on stderr.
    assert result.stderr == "rerun: 2 of 5 pairs verified, 3 failed\n"


def test_cli_batch_exit_zero_only_when_all_verified(tmp_path: Path) -> None:
    _write_pair(tmp_path, "a", 1)
    _write_pair(tmp_path, "b", 2)
    result = _run(["verify", "--batch", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 2


def test_cli_batch_with_nothing_to_do_fails(tmp_path: Path) -> None:
    result = _run(["verify", "--batch", str(tmp_path)])
    assert result.exit_code == 1
    assert "no bundle/actual pairs" in result.stderr
    result = _run(["verify", "--batch", str(tmp_path / "missing.txt")])
    assert result.exit_code == 1
    assert "missing.txt" in result.stderr and "Traceback" not in result.output


def test_cli_batch_and_a_pair_are_exclusive(corpus: Path) -> None:
    result = _run(["verify", str(corpus / "a.rr"), str(corpus / "a.actual.json"),
                   "--batch", str(corpus)])
    assert result.exit_code == 2


def test_single_pair_output_is_unchanged(corpus: Path) -> None:
    from agent_rerun.verify import verify_files

    expected = verify_files(corpus / "a.rr", corpus / "a.actual.json").to_json()
    result = _run(["verify", str(corpus / "a.rr"), str(corpus / "a.actual.json")])
    assert result.exit_code == 0
    assert result.stdout == json.dumps(expected, indent=2, ensure_ascii=False) + "\n"
    missing = _run(["verify", str(corpus / "a.rr")])
    assert missing.exit_code == 2
    assert "Missing argument 'ACTUAL'" in missing.stderr


def test_batch_goes_on_after_an_unusable_manifest_line(tmp_path: Path) -> None:
    good = {"bundle": str(C1 / "bundle.rr"), "actual": str(C1 / "actual.json")}
    manifest = tmp_path / "pairs.jsonl"
    manifest.write_text("\n".join([
        json.dumps({**good, "name": "first"}),
        json.dumps({"bundle": "x\0y.rr", "actual": "a.json", "name": "nul"}),
        '{"bundle": "a.rr", "actual": "a.json", "bundle": "b.rr"}',
        json.dumps({**good, "name": "last"}),
    ]) + "\n")
    run = run_cli("verify", "--batch", manifest)
    assert run.returncode == 1
    results = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["verified"] for r in results] == [True, False, False, True]
    assert "duplicate object key 'bundle'" in results[2]["errors"][0]
    assert "Traceback" not in run.stderr


def test_manifest_with_a_byte_order_mark_is_refused(tmp_path: Path) -> None:
    manifest = tmp_path / "pairs.txt"
    manifest.write_text(f"\ufeff{C1 / 'bundle.rr'} {C1 / 'actual.json'}\n")
    run = run_cli("verify", "--batch", manifest)
    assert run.returncode == 1
    assert "byte-order mark" in run.stderr
