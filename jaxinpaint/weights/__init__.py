"""PyTorch weights for jaxinpaint's networks: file formats, porting, and fetching the official files.

* `formats`: reading ``.pth``/``.safetensors``/``.npz`` state_dicts (`load_state_dict`) and writing our
  torch-free ``.npz`` (`save_npz`).
* `porting`: `ParamSpec` tables and `port_state_dict`, which validates a state_dict against a network's
  table and converts torch layouts to Flax variables; `detect_arch` for the pretrained feature networks.
* `fetch`: `download` of the official VGG-16/19 and FID Inception-v3 files with a SHA-256 check, into
  `cache_dir()`.
* `cli`: ``python -m jaxinpaint.weights convert|info|download`` (the entry point; it maps architecture
  names to the model modules that declare their parameter tables).

The model modules (`jaxinpaint.models.vgg`, `inception`, `edgeconnect`) build their own tables and call
`port_state_dict`; nothing here imports a model.
"""

from jaxinpaint.weights.fetch import (KNOWN_WEIGHTS, DownloadError, KnownWeights, cache_dir, download,
                                      sha256_file)
from jaxinpaint.weights.formats import (ARCH_KEY, SUPPORTED_SUFFIXES, as_numpy_state_dict, file_arch,
                                        load_state_dict, save_npz)
from jaxinpaint.weights.porting import (ARCHS, ParamSpec, check_arch, describe_arch, detect_arch,
                                        port_state_dict, torch_shape)

__all__ = [
    "ARCH_KEY", "ARCHS", "SUPPORTED_SUFFIXES", "KNOWN_WEIGHTS", "KnownWeights", "DownloadError",
    "ParamSpec", "as_numpy_state_dict", "cache_dir", "check_arch", "describe_arch", "detect_arch",
    "download", "file_arch", "load_state_dict", "port_state_dict", "save_npz", "sha256_file",
    "torch_shape",
]
