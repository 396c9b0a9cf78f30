"""jaxinpaint.xla_cpu: the XLA:CPU convolution flag set at import (why: see the module docstring)."""

import os
import subprocess
import sys

import pytest

from jaxinpaint import xla_cpu

FLAG = xla_cpu.FLAG


@pytest.mark.parametrize("flags, mode, version, expected", [
    ("", "auto", (0, 10, 2), FLAG),
    ("--xla_force_host_platform_device_count=4", "auto", (0, 10, 2),
     "--xla_force_host_platform_device_count=4 " + FLAG),
    ("", "AUTO ", (0, 11, 2), FLAG),
    ("", "auto", (0, 12, 0), None),          # untested jaxlib: an unknown flag would abort XLA
    ("", "on", (0, 12, 0), FLAG),            # ... unless asked for
    ("", "on", (0, 9, 0), None),             # the flag does not exist before 0.10.2
    ("", "off", (0, 10, 2), None),
    ("--xla_cpu_experimental_ynn_fusion_type=", "auto", (0, 10, 2), None),  # the user's own choice wins
    ("", "auto", None, None),
])
def test_wanted_flags(flags, mode, version, expected):
  assert xla_cpu.wanted_flags(flags, mode=mode, jaxlib_version=version) == expected


def test_bad_mode_names_the_variable():
  with pytest.raises(ValueError, match="JAXINPAINT_XLA_CPU_CONV"):
    xla_cpu.wanted_flags("", mode="fast", jaxlib_version=(0, 10, 2))


@pytest.mark.parametrize("flags, expected", [
    (FLAG, False),
    ("--xla_cpu_experimental_ynn_fusion_type=", False),
    ("--xla_cpu_experimental_ynn_fusion_type=individual_dot,individual_convolution", True),
    ("--a=1 --xla_cpu_experimental_ynn_fusion_type=individual_dot --b=2", False),
])
def test_convolutions_use_ynnpack_reads_xla_flags(monkeypatch, flags, expected):
  monkeypatch.setenv("XLA_FLAGS", flags)
  assert xla_cpu.convolutions_use_ynnpack() is expected


def _fresh(code: str, **env) -> list[str]:
  """Runs `code` in a new Python process (XLA_FLAGS unset unless given); its stdout lines."""
  full = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", xla_cpu.ENV_VAR)}
  full.update(env)
  out = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr
  return out.stdout.split("\n")


def test_import_sets_flag_and_xla_compiles_without_ynn_convolutions():
  code = ("import jaxinpaint, os, jax, jax.numpy as jnp\n"
          "print(os.environ['XLA_FLAGS'])\n"
          "f = jax.jit(lambda x, w: jax.lax.conv_general_dilated(\n"
          "    x, w, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC')))\n"
          "print('ynn' in f.lower(jnp.ones((2, 16, 16, 32)), jnp.ones((3, 3, 32, 32))).compile().as_text())\n")
  flags, has_ynn = _fresh(code)[:2]
  assert FLAG in flags
  assert has_ynn == "False"
  # Without it (opt-out) this jaxlib compiles the convolution into a YNNPACK fusion: the flag matters.
  lines = _fresh(code.replace("print(os.environ['XLA_FLAGS'])", "print(os.environ.get('XLA_FLAGS', ''))"),
                 **{xla_cpu.ENV_VAR: "off"})
  assert lines[1] == "True"


def test_import_after_backend_start_warns_and_leaves_flags():
  code = ("import os, jax, jax.numpy as jnp, warnings\n"
          "jnp.ones(1).block_until_ready()\n"
          "with warnings.catch_warnings(record=True) as w:\n"
          "  warnings.simplefilter('always')\n"
          "  import jaxinpaint\n"
          "print(os.environ.get('XLA_FLAGS', ''))\n"
          "print(any('imported after JAX' in str(x.message) for x in w))\n")
  flags, warned = _fresh(code)[:2]
  assert FLAG not in flags and warned == "True"
