"""Shared test helpers: where the real data lives, and torch availability."""

import json
import os
import pathlib
import subprocess
import sys

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
def _empty_models_dir(tmp_path_factory) -> pathlib.Path:
  return tmp_path_factory.mktemp("no_shipped_models")


@pytest.fixture(autouse=True)
def _no_shipped_models(_empty_models_dir, monkeypatch):
  """Every test sees an empty shipped-model search path (`jaxinpaint.pretrained`), so the defaults it checks do
  not depend on which models the package ships; tests of shipped models set or unset the variable themselves."""
  monkeypatch.setenv("JAXINPAINT_PRETRAINED_PATH", str(_empty_models_dir))


@pytest.fixture(scope="session")
def torch():
  return pytest.importorskip("torch", reason="torch is not installed; parity tests need the CPU build (pip install torch==2.13.0)")


@pytest.fixture(scope="session")
def artifacts_dir() -> pathlib.Path:
  path = REPO_ROOT / "test-artifacts"
  path.mkdir(exist_ok=True)
  return path


@pytest.fixture(scope="session")
def modules_loaded_by():
  """``modules_loaded_by(module)``: the ``jaxinpaint.*`` modules a fresh interpreter loads for ``import
  module`` beyond ``import jaxinpaint`` (for tests of the import direction)."""
  return _modules_loaded_by


def _modules_loaded_by(module: str) -> list[str]:
  code = ("import json, sys, jaxinpaint; before = set(sys.modules); import " + module + "; "
          "print(json.dumps(sorted(m for m in set(sys.modules) - before if m.startswith('jaxinpaint.'))))")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          check=False)
  assert result.returncode == 0, result.stderr
  return json.loads(result.stdout)
