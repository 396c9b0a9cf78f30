"""XLA:CPU compiler settings for convolutions, applied when `jaxinpaint` is imported.

XLA reads `XLA_FLAGS` once, when JAX creates its first backend, so `apply()` must run before any JAX
computation: `import jaxinpaint` calls it. Each setting in `SETTINGS` is a group of XLA flags measured
on a range of jaxlib versions (`python bench/bench_xla_flags.py` times fp32 and bf16 convolutions and
matrix products in one process per flag combination, interleaved):

* `ynnpack_convolutions_off` (`--xla_cpu_experimental_ynn_fusion_type=-individual_convolution`): jaxlib
  0.10-0.12 compile CPU convolutions into YNNPACK fusions by default, which run our layer shapes far below
  the matmul rate (jaxlib 0.10, 2-core AVX-512 machine: 3x3 256->256 at 64x64, batch 4: 212 ms with them,
  57 ms with XLA's Eigen kernels; 7x7 64->3 at 256x256: 745 vs 141 ms; their weight gradients are slower
  still). Removing only `individual_convolution` keeps YNNPACK for matrix products, where it is fast.
* `onednn_bf16` (`--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_custom_call=true`): from jaxlib
  0.12, only on CPUs with bf16 instructions (`avx512_bf16` or `amx_bf16` in /proc/cpuinfo), XLA rewrites
  bf16 convolutions into oneDNN calls, ~2x its other bf16 convolutions (3x3 256->256 above: 44 ms, 0.44
  TFLOP/s). XLA leaves a convolution whose kernel is reversed (autodiff's input gradient) and
  lhs-dilated ones alone; `jaxinpaint.convs` expresses both as forward convolutions in bf16. With the
  YNNPACK convolutions off, fp32 convolutions go to oneDNN as well (`Target.conv_library`); with
  `jaxinpaint.convs`'s plan for them, fp32 train steps measured no slower (PConv U-Net and EdgeConnect
  G2 + D2 at 128x128: 14-15% faster, on a loaded machine). Cost: XLA computes the bf16 matrix products it
  does not give to oneDNN in float32 under this flag (a bf16 2048^2 product: 2x slower); the networks here
  are convolutions.

A setting is never applied over the user's own choice: if `XLA_FLAGS` already names any of its flags,
it is left out. Control with the environment variable `JAXINPAINT_XLA_CPU_CONV`:
  * `auto` (default): the settings whose measured jaxlib range (and CPU requirement) holds; an unknown
    flag in `XLA_FLAGS` makes XLA abort, so other jaxlib versions are left alone.
  * `on`: every setting whose flags exist in the installed jaxlib (>= its first version), CPU permitting.
  * `off`: never touch `XLA_FLAGS`.

The flags only affect XLA:CPU compilation; GPU and TPU runs ignore them. `active_settings()` reports what
the flags of this process select (for `jaxinpaint.convs.current_target`).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import warnings

ENV_VAR = "JAXINPAINT_XLA_CPU_CONV"
YNN_FLAG_NAME = "xla_cpu_experimental_ynn_fusion_type"
ONEDNN_FLAG_NAME = "xla_cpu_experimental_onednn_custom_call"
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@dataclasses.dataclass(frozen=True)
class Setting:
  """A group of XLA flags, the jaxlib versions it was measured on and the CPU features it needs.

  Attributes:
    name: short identifier.
    flags: `--name=value` XLA flags, appended together.
    first_jaxlib: first jaxlib version where the flags exist (`on` mode applies from here).
    measured_below: `auto` mode applies for first_jaxlib <= version < measured_below.
    cpu_features: any one of these /proc/cpuinfo flags is required (empty: none).
  """
  name: str
  flags: tuple[str, ...]
  first_jaxlib: tuple[int, ...]
  measured_below: tuple[int, ...]
  cpu_features: tuple[str, ...] = ()

  @property
  def flag_names(self) -> tuple[str, ...]:
    return tuple(f.lstrip("-").split("=", 1)[0] for f in self.flags)


SETTINGS = (
    Setting("ynnpack_convolutions_off", (f"--{YNN_FLAG_NAME}=-individual_convolution",),
            first_jaxlib=(0, 10, 2), measured_below=(0, 13, 0)),
    Setting("onednn_bf16", ("--xla_cpu_use_onednn=true", f"--{ONEDNN_FLAG_NAME}=true"),
            first_jaxlib=(0, 12, 0), measured_below=(0, 13, 0), cpu_features=BF16_CPU_FLAGS),
)


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


@functools.cache
def cpu_features() -> frozenset[str]:
  """The flags of /proc/cpuinfo (Linux); empty where it does not exist."""
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("flags"):
          return frozenset(line.split(":", 1)[1].split())
  except OSError:
    pass
  return frozenset()


def _backends_initialized() -> bool:
  try:
    from jax._src import xla_bridge  # pylint: disable=import-outside-toplevel
  except ImportError:  # pragma: no cover
    return False
  probe = getattr(xla_bridge, "backends_are_initialized", None)
  return bool(probe()) if callable(probe) else False


def parse_flags(xla_flags: str) -> dict[str, str]:
  """`--a=1 --b --c=x,y` -> {'a': '1', 'b': 'true', 'c': 'x,y'} (a repeated flag: the last value)."""
  out = {}
  for item in xla_flags.split():
    if item.startswith("--"):
      name, _, value = item[2:].partition("=")
      out[name] = value if _ else "true"
  return out


def wanted_flags(xla_flags: str, *, mode: str, jaxlib_version: tuple[int, ...] | None,
                 cpu: frozenset[str] | set[str] = frozenset()) -> str | None:
  """The new `XLA_FLAGS` value, or None when it should stay as it is (pure; tested directly).

  Args:
    xla_flags: the current value of `XLA_FLAGS` ('' when unset).
    mode: 'auto', 'on' or 'off' (the value of `JAXINPAINT_XLA_CPU_CONV`).
    jaxlib_version: the installed jaxlib as a tuple, or None when unknown.
    cpu: the CPU's feature flags (`cpu_features()`).

  Returns:
    `xla_flags` with the wanted settings' flags appended, or None if there are none.
  """
  mode = (mode or "auto").strip().lower()
  if mode not in ("auto", "on", "off"):
    raise ValueError(f"environment variable {ENV_VAR} must be 'auto', 'on' or 'off', got {mode!r}")
  if mode == "off" or jaxlib_version is None:
    return None
  present = parse_flags(xla_flags)
  added = []
  for setting in SETTINGS:
    if any(name in present for name in setting.flag_names):
      continue  # the user's own choice
    if jaxlib_version < setting.first_jaxlib:
      continue
    if mode == "auto" and jaxlib_version >= setting.measured_below:
      continue
    if setting.cpu_features and not set(setting.cpu_features) & set(cpu):
      continue
    added.extend(setting.flags)
  if not added:
    return None
  return " ".join([xla_flags.strip()] + added).strip()


def apply() -> bool:
  """Appends the wanted settings to `os.environ['XLA_FLAGS']` if still possible; True if it did."""
  current = os.environ.get("XLA_FLAGS", "")
  new = wanted_flags(current, mode=os.environ.get(ENV_VAR, "auto"), jaxlib_version=_jaxlib_version(),
                     cpu=cpu_features())
  if new is None:
    return False
  if _backends_initialized():
    warnings.warn(
        f"jaxinpaint was imported after JAX created its backends, so its XLA:CPU convolution settings "
        f"({new[len(current):].strip()}) cannot take effect in this process. Import jaxinpaint before running "
        f"any JAX computation, or add them to XLA_FLAGS yourself ({ENV_VAR}=off silences this).", stacklevel=3)
    return False
  os.environ["XLA_FLAGS"] = new
  return True


@dataclasses.dataclass(frozen=True)
class ActiveSettings:
  """What XLA:CPU does with convolutions under a given `XLA_FLAGS`.

  Attributes:
    ynnpack_convolutions: convolutions (fp32; bf16 ones too unless oneDNN takes them) compile into
      YNNPACK fusions.
    onednn_convolutions: XLA rewrites convolutions into oneDNN calls (bf16 ones; fp32 ones too when the
      YNNPACK convolutions are off).
    cpu_bf16: the CPU has bf16 instructions (XLA's oneDNN rewrite handles bf16 only then).
  """
  ynnpack_convolutions: bool
  onednn_convolutions: bool
  cpu_bf16: bool


def active_settings(xla_flags: str | None = None, jaxlib_version: tuple[int, ...] | None = None,
                    cpu: frozenset[str] | None = None) -> ActiveSettings:
  """Reads `xla_flags` (default: `XLA_FLAGS` now) as XLA:CPU of `jaxlib_version` (default: installed) would."""
  flags = parse_flags(os.environ.get("XLA_FLAGS", "") if xla_flags is None else xla_flags)
  version = _jaxlib_version() if jaxlib_version is None else jaxlib_version
  cpu = cpu_features() if cpu is None else cpu
  if YNN_FLAG_NAME in flags:
    items = [item.strip() for item in flags[YNN_FLAG_NAME].split(",") if item.strip()]
    ynnpack = any(item.lstrip("+") == "individual_convolution" for item in items)
  else:  # jaxlib's default list contains individual_convolution from 0.10.2 on
    ynnpack = version is not None and version >= SETTINGS[0].first_jaxlib
  onednn = (version is not None and version >= SETTINGS[1].first_jaxlib
            and flags.get(ONEDNN_FLAG_NAME, "false").lower() in ("true", "1"))
  return ActiveSettings(ynnpack, onednn, bool(set(BF16_CPU_FLAGS) & set(cpu)))
