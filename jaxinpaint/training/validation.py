"""Config validation before anything is compiled: one `ConfigError` line for a config that cannot train.

The checks run the parsers the training itself runs (`jaxinpaint.data.parse_source_spec`,
`jaxinpaint.masks.parse_spec`, `jaxinpaint.data.check_crop`, the task's own `validate`), so a config that
validates is one the pipeline and the task accept. Nothing here prints or compiles.
"""

from __future__ import annotations

import pathlib

import jax
import ml_collections

from jaxinpaint import checkpoint as ckpt
from jaxinpaint import data
from jaxinpaint import masks as masks_lib
from jaxinpaint import tasks

Config = ml_collections.ConfigDict


class ConfigError(ValueError):
  """A configuration mistake, reported as one line before anything is compiled."""


def _check_images(field: str, spec) -> None:
  try:
    data.parse_source_spec(spec)
  except FileNotFoundError:
    raise ConfigError(f"config.{field}={spec!r}: no such file or directory (expected a folder, a .flist file, "
                      "'tfds:NAME[:SPLIT]' or 'builtin[:train|heldout|all]')") from None
  except ValueError as e:
    raise ConfigError(f'config.{field}={spec!r}: {e}') from None


def _check_masks(field: str, spec) -> None:
  try:
    masks_lib.parse_spec(spec)
  except (ValueError, FileNotFoundError) as e:
    raise ConfigError(f'config.{field}={spec!r}: {e}') from None


def validate_config(config: Config, *, num_devices: int | None = None,
                    num_processes: int | None = None) -> tasks.Task:
  """Raises ConfigError (one clear line) for a config that cannot train; compiles nothing.

  Checks: a registered `config.model` whose task accepts the config, positive sizes and intervals, the
  global batch divisible by the device and process counts, image and mask sources the input pipeline
  can parse (paths that exist), the crop mode, and an existing `config.init_from` workdir.

  Args:
    config: the training config.
    num_devices: devices the batch is sharded over (default `jax.device_count()`; with several processes
      call `training.mesh.initialize_distributed` first, or the count is only this process's).
    num_processes: processes sharing the batch (default `config.num_processes`).

  Returns:
    The task of the config (`jaxinpaint.tasks.build(config)`), validated.
  """
  try:
    task = tasks.build(config)
  except ValueError as e:
    raise ConfigError(str(e)) from None
  for field in ('batch_size', 'image_size', 'num_steps'):
    if int(config[field]) <= 0:
      raise ConfigError(f'config.{field}={config[field]} must be a positive integer')
  num_processes = num_processes or int(config.get('num_processes', 1))
  if num_devices is None:
    num_devices = jax.device_count()
  if config.batch_size % num_devices:
    suggestion = max(1, config.batch_size // num_devices) * num_devices
    raise ConfigError(f'config.batch_size={config.batch_size} must be divisible by the number of devices '
                      f'({num_devices}); e.g. --config.batch_size={suggestion}')
  if config.batch_size % num_processes:
    raise ConfigError(f'config.batch_size={config.batch_size} must be divisible by '
                      f'config.num_processes={num_processes}')
  for field in ('log_every', 'checkpoint_every', 'sample_every'):
    if int(config.get(field, 1)) <= 0:
      raise ConfigError(f'config.{field}={config.get(field)} must be a positive integer')
  try:
    task.validate()
  except ValueError as e:
    raise ConfigError(str(e)) from None
  _check_images('images', config.images)
  _check_masks('masks', config.masks)
  if config.get('crop'):
    try:
      data.check_crop(config.crop)
    except ValueError as e:
      raise ConfigError(f'config.crop: {e}') from None
  if config.get('shorter_side'):
    try:
      data.check_shorter_side(config.shorter_side, image_size=config.image_size, crop=config.get('crop') or 'random')
    except ValueError as e:
      raise ConfigError(f'config.shorter_side: {e}') from None
  if config.get('mask_size'):
    try:
      data.check_mask_size(config.mask_size, image_size=config.image_size)
    except ValueError as e:
      raise ConfigError(f'config.mask_size: {e}') from None
  if config.get('min_mask_size'):
    try:
      data.check_min_mask_size(config.min_mask_size, mask_size=config.get('mask_size'), image_size=config.image_size)
    except ValueError as e:
      raise ConfigError(f'config.min_mask_size: {e}') from None
  if config.get('eval_images'):
    _check_images('eval_images', config.eval_images)
    _check_masks('eval_masks' if config.get('eval_masks') else 'masks', config.get('eval_masks') or config.masks)
  if config.get('init_from'):
    path = pathlib.Path(config.init_from).expanduser()
    if not (ckpt.checkpoint_dir(path).is_dir() or path.is_dir()):
      raise ConfigError(f'config.init_from={config.init_from!r}: no such workdir (expected the workdir of the '
                        'run to start from, containing checkpoints/)')
  return task
