"""XLA:CPU compiler setting for convolutions, applied when `jaxinpaint` is imported.

Why: jaxlib 0.10/0.11 route CPU convolutions through a YNNPACK fusion by default
(`--xla_cpu_experimental_ynn_fusion_type` contains `individual_convolution`). On the shapes inpainting
networks use it runs far below the machine's matmul rate: measured on a 2-core AVX-512 machine
(bench/RESULTS.md), a 3x3 256->256 convolution at 64x64, batch 4, took 212 ms with it and 57 ms
(339 GFLOP/s, PyTorch's speed) without it; a 7x7 64->3 convolution at 256x256 took 745 ms vs 141 ms.
The EdgeConnect stage-2 train step went from 12.1 s to 7.4 s and the PConv train step got ~1.2x
faster. Removing only `individual_convolution` from the list keeps YNNPACK for matrix products
(where it is fast), and XLA falls back to its Eigen convolution kernels.

XLA reads `XLA_FLAGS` once, when the first backend is created, so this must run before any JAX
computation: `import jaxinpaint` does it. It never overrides a choice the user made: if `XLA_FLAGS`
already mentions `xla_cpu_experimental_ynn_fusion_type`, nothing is changed.

Control with the environment variable `JAXINPAINT_XLA_CPU_CONV`:
  * `auto` (default): apply for the jaxlib versions where the flag was measured (see
    `TESTED_JAXLIB`); an unknown flag in `XLA_FLAGS` makes XLA abort, so newer versions are left alone.
  * `on`: apply for any jaxlib (>= 0.10.2, where the flag exists).
  * `off`: never touch `XLA_FLAGS`.

The flag only affects XLA:CPU compilation; GPU and TPU runs ignore it.
"""

from __future__ import annotations

import os
import warnings

ENV_VAR = "JAXINPAINT_XLA_CPU_CONV"
FLAG_NAME = "xla_cpu_experimental_ynn_fusion_type"
FLAG = f"--{FLAG_NAME}=-individual_convolution"
# [first, last) jaxlib versions on which the flag was measured to help (0.10.2 here; 0.11.x documents
# the same flag and default). `on` extends to anything >= MIN_JAXLIB.
MIN_JAXLIB = (0, 10, 2)
TESTED_JAXLIB = ((0, 10, 2), (0, 12, 0))


def _version_tuple(text: str) -> tuple[int, ...]:
  parts = []
  for piece in text.split(".")[:3]:
    digits = "".join(ch for ch in piece if ch.isdigit())
    parts.append(int(digits) if digits else 0)
  return tuple(parts)


def _jaxlib_version() -> tuple[int, ...] | None:
  try:
    from jaxlib import version  # pylint: disable=import-outside-toplevel
  except ImportError:  # pragma: no cover - jaxlib is a dependency
    return None
  return _version_tuple(version.__version__)


def _backends_initialized() -> bool:
  try:
    from jax._src import xla_bridge  # pylint: disable=import-outside-toplevel
  except ImportError:  # pragma: no cover
    return False
  probe = getattr(xla_bridge, "backends_are_initialized", None)
  return bool(probe()) if callable(probe) else False


def wanted_flags(xla_flags: str, *, mode: str, jaxlib_version: tuple[int, ...] | None) -> str | None:
  """The new `XLA_FLAGS` value, or None when it should stay as it is (pure; tested directly).

  Args:
    xla_flags: the current value of `XLA_FLAGS` ('' when unset).
    mode: 'auto', 'on' or 'off' (the value of `JAXINPAINT_XLA_CPU_CONV`).
    jaxlib_version: the installed jaxlib as a tuple, or None when unknown.

  Returns:
    `xla_flags` with `FLAG` appended, or None.
  """
  mode = (mode or "auto").strip().lower()
  if mode not in ("auto", "on", "off"):
    raise ValueError(f"environment variable {ENV_VAR} must be 'auto', 'on' or 'off', got {mode!r}")
  if mode == "off" or FLAG_NAME in xla_flags or jaxlib_version is None:
    return None
  if jaxlib_version < MIN_JAXLIB:
    return None
  if mode == "auto" and not TESTED_JAXLIB[0] <= jaxlib_version < TESTED_JAXLIB[1]:
    return None
  return f"{xla_flags} {FLAG}".strip()


def apply() -> bool:
  """Appends `FLAG` to `os.environ['XLA_FLAGS']` if wanted and still possible; True if it did."""
  current = os.environ.get("XLA_FLAGS", "")
  new = wanted_flags(current, mode=os.environ.get(ENV_VAR, "auto"), jaxlib_version=_jaxlib_version())
  if new is None:
    return False
  if _backends_initialized():
    warnings.warn(
        f"jaxinpaint was imported after JAX created its backends, so the faster XLA:CPU convolution "
        f"setting ({FLAG}) cannot take effect in this process. Import jaxinpaint before running any JAX "
        f"computation, or set XLA_FLAGS='{FLAG}' yourself ({ENV_VAR}=off silences this).", stacklevel=3)
    return False
  os.environ["XLA_FLAGS"] = new
  return True


def convolutions_use_ynnpack() -> bool:
  """Whether XLA:CPU's YNNPACK convolution fusion is (probably) on in this process.

  Read from `XLA_FLAGS` as it is now; `jaxinpaint.convs` uses it to pick the weight-gradient formulation
  that is fastest under each setting.
  """
  flags = os.environ.get("XLA_FLAGS", "")
  if FLAG_NAME not in flags:
    version = _jaxlib_version()
    return version is not None and version >= MIN_JAXLIB
  rest = flags.split(f"{FLAG_NAME}=")[-1] if f"{FLAG_NAME}=" in flags else ""
  value = rest.split()[0] if rest.split() and not rest.startswith(" ") else ""
  items = [item.strip() for item in value.split(",") if item.strip()]
  return any(item.lstrip("+") == "individual_convolution" for item in items)
