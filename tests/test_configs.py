"""The training recipes in configs/: loaded the way train.py loads them, their docstrings and key settings.

Every recipe is parsed through `ml_collections.config_flags.DEFINE_config_file` (train.py's loader) for every
argument it accepts; `configs/common.py` holds the paper bases and `parse_arg`.
"""

import os
import pathlib
import re
import subprocess
import sys

from absl import flags
from ml_collections import config_flags
import pytest

from configs import common

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = REPO / 'configs'

# Recipe -> the config arguments it accepts (the text after ':').
RECIPES = {
    'pconv_places2': common.PHASES,
    'pconv_celeba': common.PHASES,
    'pconv_tiny': common.PHASES,
    'pconv_cpu_hour': common.PHASES,
    'quickstart': {'': 1},
    'edgeconnect_places2': common.STAGES,
    'edgeconnect_celeba': common.STAGES,
    'edgeconnect_quickstart': common.STAGES,
    'edgeconnect_cpu': common.STAGES,
}
_HISTORY = re.compile(r'\b(first|second|third|fourth|fifth|this|previous|earlier|last) sessions?\b|'
                      r'\bissue ?#?[0-9]+|github +issue', re.IGNORECASE)


def load(spec: str):
  """`train.py --config configs/<spec>`: the config file flag parsed by config_flags, locked."""
  flag_values = flags.FlagValues()
  config_flags.DEFINE_config_file('config', flag_values=flag_values, lock_config=True)
  flag_values(['train.py', f'--config={CONFIGS / spec}'])
  return flag_values.config


def field(config, dotted: str):
  for key in dotted.split('.'):
    config = config[key]
  return config


def docstring(name: str) -> str:
  text = (CONFIGS / f'{name}.py').read_text()
  match = re.match(r'\s*"""(.*?)"""', text, re.DOTALL)
  assert match, f'configs/{name}.py has no module docstring'
  return match.group(1)


def test_every_recipe_is_listed():
  files = {p.stem for p in CONFIGS.glob('*.py')} - {'__init__', 'common'}
  assert files == set(RECIPES)


@pytest.mark.parametrize('name', sorted(RECIPES))
def test_recipe_loads_for_every_argument(name):
  model = 'edgeconnect' if name.startswith('edgeconnect') else 'pconv'
  key = 'phase' if model == 'pconv' else 'stage'
  configs = {arg: load(f'{name}.py:{arg}' if arg else f'{name}.py') for arg in RECIPES[name]}
  for arg, config in configs.items():
    assert config.is_locked and config.model == model
    assert config[key] == RECIPES[name][arg], arg
  # Aliases of one phase/stage give the same config.
  for arg, value in RECIPES[name].items():
    first = next(a for a, v in RECIPES[name].items() if v == value)
    assert configs[arg].to_dict() == configs[first].to_dict(), (arg, first)


@pytest.mark.parametrize('name', sorted(RECIPES))
def test_docstring_names_its_launch_command_and_cost(name):
  doc = docstring(name)
  assert f'python train.py --config configs/{name}.py' in doc
  assert 'Expected cost:' in doc
  # Every `configs/<name>.py:ARG` the docstring shows is an argument the recipe accepts.
  shown = re.findall(rf'configs/{name}\.py:(\w+)', doc)
  assert all(arg in RECIPES[name] for arg in shown), shown
  if len(set(RECIPES[name].values())) > 1:
    assert shown, f'configs/{name}.py takes arguments but its docstring launches none'


@pytest.mark.parametrize('path', sorted(CONFIGS.glob('*.py')), ids=lambda p: p.name)
def test_config_files_are_a_package_and_speak_of_the_code(path):
  text = path.read_text()
  assert 'spec_from_file_location' not in text and 'importlib' not in text
  if path.stem in RECIPES:
    assert 'from configs import common' in text
  assert not _HISTORY.search(text), _HISTORY.search(text).group(0)


PCONV_PAPER = {'loss.valid': 1.0, 'loss.hole': 6.0, 'loss.perceptual': 0.05, 'loss.style': 120.0,
               'loss.tv': 0.1, 'loss.ssim': 0.0, 'loss.mse': 0.0, 'loss.allow_missing_vgg': False,
               'lr_schedule': 'constant'}
EDGECONNECT_PAPER = {'loss.edge_adversarial': 1.0, 'loss.feature_matching': 10.0, 'loss.l1': 1.0,
                     'loss.adversarial': 0.1, 'loss.perceptual': 0.1, 'loss.style': 250.0, 'adam_b1': 0.0,
                     'adam_b2': 0.9, 'd2g_lr': 0.1, 'batch_size': 8, 'image_size': 256,
                     'num_steps': 2_000_000, 'edgeconnect.features': 64, 'edgeconnect.residual_blocks': 8,
                     'edgeconnect.edge_sigma': 2.0, 'loss.hole': 0.0, 'loss.ssim': 0.0, 'dtype': 'float32'}
KEY_FIELDS = {
    # Liu et al. 2018 sec. 4: 512x512, batch 6, lr 2e-4 then 5e-5 with frozen encoder BatchNorm.
    'pconv_places2.py': {**PCONV_PAPER, 'image_size': 512, 'batch_size': 6, 'pconv.num_levels': 8,
                         'learning_rate': 2e-4, 'num_steps': 600_000, 'evaluate_at_end': True},
    'pconv_places2.py:phase2': {**PCONV_PAPER, 'phase': 2, 'learning_rate': 5e-5, 'num_steps': 200_000},
    'pconv_celeba.py': {**PCONV_PAPER, 'image_size': 256, 'pconv.num_levels': 7, 'learning_rate': 2e-4},
    'pconv_celeba.py:phase2': {'phase': 2, 'image_size': 256, 'learning_rate': 5e-5},
    'pconv_tiny.py': {'image_size': 32, 'pconv.num_levels': 3, 'pconv.features': (8, 16, 16),
                      'pconv.kernel_sizes': (5, 3, 3), 'images': 'builtin:train', 'eval_images': 'builtin:heldout',
                      'num_workers': 0, 'num_steps': 10, 'checkpoint_every': 5, 'learning_rate': 1e-3,
                      'loss.allow_missing_vgg': True, 'keep_checkpoints': 2},
    'pconv_tiny.py:phase2': {'phase': 2, 'learning_rate': 5e-4, 'num_steps': 10},
    'pconv_cpu_hour.py': {'images': str(REPO.parent / 'shared' / 'data' / 'natural'),
                          'masks': 'mix:irregular=3,block=1', 'eval_images': 'builtin:heldout',
                          'image_size': 64, 'pconv.features': (32, 64, 128, 128, 128), 'pconv.num_levels': 5,
                          'loss.perceptual': 0.0, 'loss.style': 0.0, 'loss.hole': 6.0, 'learning_rate': 2e-3,
                          'warmup_steps': 200, 'num_steps': 12000, 'init_from': '', 'keep_checkpoints': 1000,
                          'evaluate_at_end': False},
    'pconv_cpu_hour.py:phase2': {'init_from': str(REPO / 'runs' / 'pconv_cpu_hour'), 'image_size': 128,
                                 'learning_rate': 6e-4, 'lr_schedule': 'cosine', 'loss.ssim': 5.0,
                                 'warmup_steps': 0, 'num_steps': 10000, 'checkpoint_every': 1000},
    'quickstart.py': {'images': 'builtin:train', 'image_size': 64, 'pconv.features': (16, 32, 64, 64, 64),
                      'num_steps': 2000, 'channel_shuffle': True, 'final_eval_limit': None, 'final_eval_repeats': 8,
                      'final_eval_baseline': 'telea', 'loss.allow_missing_vgg': True, 'learning_rate': 2e-3},
    # Nazeri et al. 2019 / the authors' config.yml.
    'edgeconnect_places2.py': {**EDGECONNECT_PAPER, 'stage': 1, 'learning_rate': 1e-4, 'crop': 'center',
                               'evaluate_at_end': False},
    'edgeconnect_places2.py:stage4': {**EDGECONNECT_PAPER, 'stage': 4, 'learning_rate': 1e-6,
                                      'evaluate_at_end': True},
    'edgeconnect_celeba.py:stage3': {**EDGECONNECT_PAPER, 'stage': 3, 'crop': 'celeba'},
    'edgeconnect_quickstart.py:stage1': {'images': 'builtin:train', 'image_size': 64, 'crop': 'random',
                                         'edgeconnect.features': 16, 'edgeconnect.residual_blocks': 2,
                                         'edgeconnect.d_features': 16, 'learning_rate': 1e-3, 'num_steps': 300,
                                         'loss.allow_missing_vgg': True, 'final_eval_limit': None},
    'edgeconnect_quickstart.py:stage4': {'stage': 4, 'learning_rate': 1e-4, 'evaluate_at_end': True},
    # Natural photos only (never places/psv), the paper's mask mix, Adam(0, 0.9); two labelled extra terms.
    'edgeconnect_cpu.py:stage1': {'images': str(REPO.parent / 'shared' / 'data' / 'natural'),
                                  'masks': 'mix:irregular=3,block=1', 'eval_images': 'builtin:heldout',
                                  'image_size': 64, 'dtype': 'bfloat16', 'adam_b1': 0.0, 'adam_b2': 0.9,
                                  'edgeconnect.edge_sigma': 2.0, 'loss.hole': 0.0, 'loss.ssim': 0.0,
                                  'loss.allow_missing_vgg': True, 'learning_rate': 5e-4, 'init_from': ''},
    'edgeconnect_cpu.py:stage2': {'stage': 2, 'image_size': 64, 'loss.hole': 5.0, 'loss.ssim': 5.0,
                                  'loss.l1': 1.0, 'loss.adversarial': 0.1, 'learning_rate': 1e-3},
    # From the 128x128 stage 3 on, half the strokes twice as thick: holes as wide as the evaluation's at 256.
    'edgeconnect_cpu.py:stage3': {'stage': 3, 'image_size': 128, 'learning_rate': 5e-4, 'lr_schedule': 'cosine',
                                  'num_steps': 3000, 'masks': 'mix:irregular=3,irregular@2=3,block=2'},
    'edgeconnect_cpu.py:stage4': {'stage': 4, 'image_size': 128, 'learning_rate': 1e-4, 'lr_schedule': 'constant',
                                  'masks': 'mix:irregular=3,irregular@2=3,block=2'},
}


@pytest.mark.parametrize('spec', sorted(KEY_FIELDS))
def test_key_fields(spec):
  config = load(spec)
  got = {k: field(config, k) for k in KEY_FIELDS[spec]}
  assert got == KEY_FIELDS[spec]


def test_parse_arg():
  assert [common.parse_arg(a, common.PHASES) for a in ('', 'phase1', 'phase2')] == [1, 1, 2]
  assert [common.parse_arg(a, common.STAGES) for a in ('', 'stage3', '4')] == [1, 3, 4]
  with pytest.raises(ValueError) as error:
    common.parse_arg('phase3', common.PHASES)
  assert str(error.value) == "config argument 'phase3': expected one of '', 'phase1', 'phase2'"
  with pytest.raises(ValueError, match=r"^config argument 'stage5': expected one of '', 'stage1', .*'stage4'"):
    common.parse_arg('stage5', common.STAGES)


@pytest.mark.parametrize('spec, allowed', [('pconv_tiny.py:phase3', "'', 'phase1', 'phase2'"),
                                           ('quickstart.py:phase2', "''"),
                                           ('edgeconnect_celeba.py:stage5', "'', 'stage1'")])
def test_bad_argument_names_it_and_the_accepted_ones(spec, allowed):
  with pytest.raises(flags.IllegalFlagValueError, match=re.escape(
      f"config argument {spec.split(':')[1]!r}: expected one of {allowed}")):
    load(spec)


def test_pconv_unet_needs_a_kernel_size_per_level():
  config = common.pconv(1)
  common.pconv_unet(config, features=(8, 16), kernel_sizes=(5, 3))
  assert (config.pconv.num_levels, config.pconv.features, config.pconv.kernel_sizes) == (2, (8, 16), (5, 3))
  with pytest.raises(ValueError, match='kernel_sizes'):
    common.pconv_unet(config, features=(8, 16), kernel_sizes=(5,))


@pytest.mark.parametrize('spec', ['pconv_tiny.py', 'pconv_tiny.py:phase2', 'quickstart.py',
                                  'edgeconnect_quickstart.py:stage1', 'edgeconnect_quickstart.py:stage4',
                                  'edgeconnect_cpu.py:stage1', 'edgeconnect_cpu.py:stage3'])
def test_cpu_recipes_pass_the_trainers_validation(spec):
  """They train offline as shipped: built-in photos, generated masks, no VGG weights needed."""
  from jaxinpaint.training import loop  # pylint: disable=import-outside-toplevel
  loop.validate_config(load(spec), num_devices=1)


def test_train_py_finds_the_configs_package_from_any_directory(tmp_path):
  """train.py's directory (the repository root) is what puts `configs` on sys.path; PYTHONPATH is not needed."""
  env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  proc = subprocess.run([sys.executable, str(REPO / 'train.py'), '--config', f'{CONFIGS}/pconv_tiny.py:phase3',
                         '--workdir', str(tmp_path / 'wd')], cwd=tmp_path, env=env, capture_output=True,
                        text=True, timeout=300)
  assert proc.returncode == 2
  assert "config argument 'phase3': expected one of '', 'phase1', 'phase2'" in proc.stderr
  assert 'ModuleNotFoundError' not in proc.stderr
  assert not (tmp_path / 'wd').exists()
