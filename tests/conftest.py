"""Shared test helpers: where the real data lives, torch availability, killing a hanging training subprocess,
and the output check of models computing in bf16."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
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


@pytest.fixture(scope="session")
def kill_when_hanging():
  """``kill_when_hanging(proc, *, timeout, exit_timeout)``: reads the subprocess's stdout until it prints
  'hanging' (or `timeout` seconds pass), then kills it with SIGKILL and waits up to `exit_timeout` seconds."""
  return _kill_when_hanging


def _kill_when_hanging(proc: subprocess.Popen, *, timeout: float, exit_timeout: float) -> None:
  deadline = time.time() + timeout
  for line in proc.stdout:
    if "hanging" in line or time.time() > deadline:
      break
  proc.send_signal(signal.SIGKILL)
  proc.wait(timeout=exit_timeout)


@pytest.fixture(scope="session")
def assert_bf16_output():
  """``assert_bf16_output(out, ref, *, min_diff)``: the output `out` of a model computing in bf16 is float32,
  within 3% of the largest magnitude of the float32 model's output `ref`, and differs from `ref` by more than
  `min_diff` times that magnitude (it did compute in bf16)."""
  return _assert_bf16_output


def _assert_bf16_output(out, ref, *, min_diff: float) -> None:
  assert out.dtype == np.float32
  scale = float(np.abs(ref).max())
  np.testing.assert_allclose(out, ref, atol=0.03 * scale)
  assert float(np.abs(out - ref).max()) > min_diff * scale
