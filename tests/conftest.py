"""Fixtures for every test; the helpers they use live in ``support.py``.

Tests import helpers from ``support`` (never ``from conftest import``: conftest
is pytest's, and importing it by name makes a second copy of it). The names
imported "as" themselves below are re-exported only so that a test still written
against conftest keeps running; tests/test_support_imports.py names such a test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import (
    JCS_TESTDATA,
    PUBLISHED_VECTORS,
    SEED_PAGE,
    WYCHEPROOF_ED25519,
    require_path,
    run_cli,
)
from support import OUR_VECTORS as OUR_VECTORS
from support import REPO as REPO
from support import SHARED as SHARED
from support import CliResult as CliResult
from support import in_ci as in_ci
from support import require as require
from support import vector_dirs as vector_dirs
from support import vector_matches as vector_matches


@pytest.fixture(autouse=True)
def _isolated_from_user_config(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """No test reads the developer's real config (a [sign] key there would change results)."""
    # An explicitly named config must exist, so point at an empty one.
    empty = tmp_path_factory.getbasetemp() / "empty-rerun-config.toml"
    if not empty.exists():
        empty.write_text("")
    monkeypatch.setenv("RERUN_CONFIG", str(empty))
    monkeypatch.delenv("RERUN_DEBUG", raising=False)
    yield


@pytest.fixture
def published_vectors() -> Path:
    return require_path(PUBLISHED_VECTORS, "published conformance vectors (../shared)")


@pytest.fixture
def jcs_testdata() -> Path:
    return require_path(JCS_TESTDATA, "JCS test data (../shared/testdata/jcs)")


@pytest.fixture
def wycheproof_ed25519() -> Path:
    return require_path(WYCHEPROOF_ED25519, "Wycheproof Ed25519 suite (../shared/testdata)")


@pytest.fixture
def seed_page() -> Path:
    return require_path(SEED_PAGE, "published package page (../shared/seed)")


@pytest.fixture(name="run_cli")
def run_cli_fixture() -> Callable[..., CliResult]:
    """The :func:`run_cli` helper, for tests that prefer a fixture to an import."""
    return run_cli
