"""Training: the model-agnostic data-parallel loop; the models themselves are tasks (`jaxinpaint.tasks`).

Public API:
  * `train_and_evaluate(config, workdir)`: train (resuming automatically), then evaluate if configured.
  * `validate_config(config)`: one-line `ConfigError` for configs that cannot train (nothing compiled).
  * `evaluate_checkpoint(config, workdir)`: the end-of-training report on held-out images.
  * `restore_predictor(workdir_or_checkpoint, *, model=None) -> (predict, info)`: inference from a
    checkpoint (defined in `jaxinpaint.predictor`).
  * `NonFiniteLossError`: a NaN/inf loss stopped the run (the last good checkpoint is kept).

Submodules: `loop`, `validation`, `report`, `mesh` (device mesh and batch placement), `observe` (progress,
metrics.jsonl, pictures).
"""

from jaxinpaint.predictor import restore_predictor
from jaxinpaint.training.loop import NonFiniteLossError, train_and_evaluate
from jaxinpaint.training.report import evaluate_checkpoint
from jaxinpaint.training.validation import ConfigError, validate_config

__all__ = ['ConfigError', 'NonFiniteLossError', 'evaluate_checkpoint', 'restore_predictor', 'train_and_evaluate',
           'validate_config']
