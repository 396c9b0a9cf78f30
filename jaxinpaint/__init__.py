"""jaxinpaint: Partial Convolutions and EdgeConnect image inpainting in JAX/Flax.

Conventions used everywhere inside the package:
  * images are float32 NHWC (or HWC) RGB in [0, 1];
  * masks are float32 with **1 = valid (known) pixel, 0 = hole**; files that store holes as white are
    converted once, when they are loaded (`jaxinpaint.masks.load`).

Public modules: `jaxinpaint.layers`, `jaxinpaint.models`, `jaxinpaint.losses`, `jaxinpaint.metrics`,
`jaxinpaint.masks`, `jaxinpaint.edges`, `jaxinpaint.data`.
"""

__version__ = "0.1.0"
