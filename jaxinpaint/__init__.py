"""jaxinpaint: Partial Convolutions and EdgeConnect image inpainting in JAX/Flax.

Conventions used everywhere inside the package:
  * images are float32 NHWC (or HWC) RGB in [0, 1];
  * masks are float32 with **1 = valid (known) pixel, 0 = hole**; files that store holes as white are
    converted once, when they are loaded (`jaxinpaint.masks.load`).

Public modules: `jaxinpaint.layers`, `jaxinpaint.models`, `jaxinpaint.losses`, `jaxinpaint.metrics`,
`jaxinpaint.masks`, `jaxinpaint.edges`, `jaxinpaint.data`.
"""

from jaxinpaint import xla_cpu as _xla_cpu

# Before any JAX computation: XLA:CPU's default YNNPACK convolutions are 3-5x slower than its Eigen ones
# on our layer shapes (see `jaxinpaint.xla_cpu`; opt out with JAXINPAINT_XLA_CPU_CONV=off).
_xla_cpu.apply()

__version__ = "0.1.0"
