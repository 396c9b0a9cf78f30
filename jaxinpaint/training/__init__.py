"""Training: a model-agnostic data-parallel loop plus one module per model (the protocol is in `registry`).

Public API:
  * `train_and_evaluate(config, workdir)`: train (resuming automatically), then evaluate if configured.
  * `validate_config(config)`: one-line `ConfigError` for configs that cannot train (nothing compiled).
  * `restore_predictor(workdir_or_checkpoint, *, model=None) -> (predict, info)`: inference from a checkpoint.
  * `registry.register(name, module_path)`: plug in another model (`config.model = name`).

Submodules are imported lazily so `import jaxinpaint.training` stays cheap.
"""

import importlib

_EXPORTS = {
    'train_and_evaluate': 'jaxinpaint.training.loop',
    'validate_config': 'jaxinpaint.training.loop',
    'restore_predictor': 'jaxinpaint.training.loop',
    'evaluate_checkpoint': 'jaxinpaint.training.loop',
    'ConfigError': 'jaxinpaint.training.loop',
    'NonFiniteLossError': 'jaxinpaint.training.loop',
}
_SUBMODULES = ('checkpoint', 'loop', 'mesh', 'observe', 'pconv', 'registry')

__all__ = list(_EXPORTS) + list(_SUBMODULES)


def __getattr__(name):
  if name in _EXPORTS:
    return getattr(importlib.import_module(_EXPORTS[name]), name)
  if name in _SUBMODULES:
    return importlib.import_module(f'jaxinpaint.training.{name}')
  raise AttributeError(f"module 'jaxinpaint.training' has no attribute {name!r}")
