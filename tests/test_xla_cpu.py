"""jaxinpaint.xla_cpu: the XLA:CPU convolution settings applied at import (why: see the module docstring)."""

import os
import subprocess
import sys

import pytest

from jaxinpaint import xla_cpu

YNN = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"
ONEDNN = "--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_custom_call=true"
BF16_CPU = frozenset({"avx2", "avx512f", "avx512_bf16"})
AMX_CPU = frozenset({"avx512f", "amx_bf16"})
PLAIN_CPU = frozenset({"avx2", "avx512f"})


@pytest.mark.parametrize("flags, mode, version, cpu, expected", [
    ("", "auto", (0, 10, 2), BF16_CPU, YNN),                       # no oneDNN bf16 rewrite before 0.12
    ("--xla_force_host_platform_device_count=4", "auto", (0, 10, 2), PLAIN_CPU,
     "--xla_force_host_platform_device_count=4 " + YNN),
    ("", "AUTO ", (0, 11, 2), PLAIN_CPU, YNN),
    ("", "auto", (0, 12, 0), BF16_CPU, f"{YNN} {ONEDNN}"),
    ("", "auto", (0, 12, 0), AMX_CPU, f"{YNN} {ONEDNN}"),
    ("", "auto", (0, 12, 0), PLAIN_CPU, YNN),                      # no bf16 instructions: no oneDNN
    ("", "auto", (0, 13, 0), BF16_CPU, None),                      # unmeasured jaxlib: an unknown flag aborts XLA
    ("", "on", (0, 13, 0), BF16_CPU, f"{YNN} {ONEDNN}"),           # ... unless asked for
    ("", "on", (0, 9, 0), BF16_CPU, None),                         # the flags do not exist yet
    ("", "off", (0, 12, 0), BF16_CPU, None),
    ("--xla_cpu_experimental_ynn_fusion_type=", "auto", (0, 10, 2), BF16_CPU, None),  # the user's choice wins
    ("--xla_cpu_experimental_ynn_fusion_type=", "auto", (0, 12, 0), BF16_CPU,
     "--xla_cpu_experimental_ynn_fusion_type= " + ONEDNN),
    ("--xla_cpu_use_onednn=false", "auto", (0, 12, 0), BF16_CPU, "--xla_cpu_use_onednn=false " + YNN),
    ("", "auto", None, BF16_CPU, None),
])
def test_wanted_flags(flags, mode, version, cpu, expected):
  assert xla_cpu.wanted_flags(flags, mode=mode, jaxlib_version=version, cpu=cpu) == expected


def test_bad_mode_names_the_variable():
  with pytest.raises(ValueError, match="JAXINPAINT_XLA_CPU_CONV"):
    xla_cpu.wanted_flags("", mode="fast", jaxlib_version=(0, 10, 2))


@pytest.mark.parametrize("flags, version, expected", [
    (YNN, (0, 10, 2), (False, False)),
    ("", (0, 10, 2), (True, False)),                                # jaxlib's default list
    ("", (0, 10, 1), (False, False)),
    ("--xla_cpu_experimental_ynn_fusion_type=individual_dot,individual_convolution", (0, 12, 0), (True, False)),
    ("--a=1 --xla_cpu_experimental_ynn_fusion_type=individual_dot --b=2", (0, 12, 0), (False, False)),
    (f"{YNN} {ONEDNN}", (0, 12, 0), (False, True)),
    (f"{YNN} --xla_cpu_experimental_onednn_custom_call", (0, 12, 0), (False, True)),  # bare bool flag
    (f"{YNN} {ONEDNN}", (0, 10, 2), (False, False)),                # no oneDNN rewrite in that jaxlib
    (f"{YNN} --xla_cpu_experimental_onednn_custom_call=false", (0, 12, 0), (False, False)),
])
def test_active_settings_read_xla_flags(flags, version, expected):
  active = xla_cpu.active_settings(flags, version, BF16_CPU)
  assert (active.ynnpack_convolutions, active.onednn_convolutions) == expected
  assert active.cpu_bf16 and not xla_cpu.active_settings(flags, version, PLAIN_CPU).cpu_bf16


def _fresh(code: str, **env) -> list[str]:
  """Runs `code` in a new Python process (XLA_FLAGS unset unless given); its stdout lines."""
  full = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", xla_cpu.ENV_VAR)}
  full.update(env)
  out = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr
  return out.stdout.split("\n")


_COMPILE = ("import jaxinpaint, os, jax, jax.numpy as jnp\n"
            "print(os.environ.get('XLA_FLAGS', ''))\n"
            "f = jax.jit(lambda x, w: jax.lax.conv_general_dilated(\n"
            "    x, w, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC')))\n"
            "for dt in (jnp.float32, jnp.bfloat16):\n"
            "  text = f.lower(jnp.ones((2, 16, 16, 32), dt), jnp.ones((3, 3, 32, 32), dt)).compile().as_text()\n"
            "  print('ynn' in text, '__onednn$convolution' in text)\n")


def test_import_applies_settings_and_xla_compiles_accordingly():
  lines = _fresh(_COMPILE)
  expected = xla_cpu.wanted_flags("", mode="auto", jaxlib_version=xla_cpu._jaxlib_version(),
                                  cpu=xla_cpu.cpu_features())
  assert lines[0] == (expected or "")
  active = xla_cpu.active_settings(lines[0])
  # float32 and bfloat16 convolutions: (YNNPACK fusion, oneDNN call) as the settings say.
  onednn_bf16 = active.onednn_convolutions and active.cpu_bf16
  assert lines[1] == f"{active.ynnpack_convolutions} {active.onednn_convolutions and not active.ynnpack_convolutions}"
  assert lines[2] == f"{active.ynnpack_convolutions and not onednn_bf16} {onednn_bf16}"
  if expected is None:
    pytest.skip(f"no setting is measured for jaxlib {xla_cpu._jaxlib_version()}")
  assert not active.ynnpack_convolutions
  # Without them (opt-out) this jaxlib compiles convolutions into YNNPACK fusions: the setting matters.
  off = _fresh(_COMPILE, **{xla_cpu.ENV_VAR: "off"})
  assert off[0] == "" and off[1] == "True False"


def test_import_after_backend_start_warns_and_leaves_flags():
  if xla_cpu.wanted_flags("", mode="auto", jaxlib_version=xla_cpu._jaxlib_version(),
                          cpu=xla_cpu.cpu_features()) is None:
    pytest.skip(f"no setting is measured for jaxlib {xla_cpu._jaxlib_version()}")
  code = ("import os, jax, jax.numpy as jnp, warnings\n"
          "jnp.ones(1).block_until_ready()\n"
          "with warnings.catch_warnings(record=True) as w:\n"
          "  warnings.simplefilter('always')\n"
          "  import jaxinpaint\n"
          "print(os.environ.get('XLA_FLAGS', ''))\n"
          "print(any('imported after JAX' in str(x.message) for x in w))\n")
  flags, warned = _fresh(code)[:2]
  assert flags == "" and warned == "True"
