"""Shared test helpers: where the real data lives, and torch availability."""

import os
import pathlib

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
# The workplace keeps real data beside the repository (never inside it): ../shared/data.
SHARED_DATA = pathlib.Path(os.environ.get("JAXINPAINT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
  if not SHARED_DATA.is_dir():
    pytest.skip(f"real test data not found at {SHARED_DATA} (set JAXINPAINT_SHARED_DATA)")
  return SHARED_DATA


@pytest.fixture(scope="session")
def torch():
  return pytest.importorskip("torch", reason="torch is not installed; parity tests need the CPU build (pip install torch==2.13.0)")


@pytest.fixture(scope="session")
def artifacts_dir() -> pathlib.Path:
  path = REPO_ROOT / "test-artifacts"
  path.mkdir(exist_ok=True)
  return path
