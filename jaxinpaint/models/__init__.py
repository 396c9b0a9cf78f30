"""Networks: the PConv U-Net, EdgeConnect's generators/discriminator, and pretrained feature networks.

Submodules are imported lazily so `import jaxinpaint.models` stays cheap.
"""

import importlib

_EXPORTS = {
    "PConvUNet": "jaxinpaint.models.pconv_unet",
    "EdgeGenerator": "jaxinpaint.models.edgeconnect",
    "InpaintGenerator": "jaxinpaint.models.edgeconnect",
    "PatchDiscriminator": "jaxinpaint.models.edgeconnect",
}
_SUBMODULES = ("pconv_unet", "edgeconnect", "vgg", "inception")

__all__ = list(_EXPORTS) + list(_SUBMODULES)


def __getattr__(name):
  if name in _EXPORTS:
    return getattr(importlib.import_module(_EXPORTS[name]), name)
  if name in _SUBMODULES:
    return importlib.import_module(f"jaxinpaint.models.{name}")
  raise AttributeError(f"module 'jaxinpaint.models' has no attribute {name!r}")
