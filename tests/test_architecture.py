"""The package's import graph: no cycles, every import points down the layer table, no model-name branches.

The layers (README "Layout", DESIGN.md), each importing only from the layers below it:

  entry points     train.py, evaluate.py, python -m jaxinpaint.{inpaint,demo,weights,pretrained}
                   (demo/__main__.py, weights/__main__.py + weights/cli.py, which maps architecture names to
                   the models, pretrained/__main__.py)
  applications     training (may call evaluation for its end-of-run report), evaluation, inpaint, demo
                   (may use inpaint), pretrained.export (may read evaluation results)
  predictor        jaxinpaint.predictor
  shipped models   jaxinpaint.pretrained (the files shipped in the package, read by name)
  checkpoint       jaxinpaint.checkpoint
  tasks            jaxinpaint.tasks (one module per model, reached through the registry)
  models, losses   jaxinpaint.models, jaxinpaint.losses
  building blocks  layers, convs, xla_cpu, metrics, masks, edges, data, weights, baselines, figures, cli

Every import counts: module level and inside functions, `import x`, `from x import y` (an edge to the
submodule `x.y` when it is one, else to `x`), `importlib.import_module('...')` and any other string
constant that names a package module (dispatch tables of lazy imports). Python's implicit import of a
module's parent packages is not an edge; an explicit `from jaxinpaint import tasks` is.
"""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = 'jaxinpaint'
ENTRY_SCRIPTS = ('train.py', 'evaluate.py')

# Bottom to top. A module belongs to its most specific pattern ('x.*' = x and everything under it).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ('building blocks', ('jaxinpaint', 'jaxinpaint.xla_cpu', 'jaxinpaint.convs', 'jaxinpaint.layers',
                         'jaxinpaint.metrics', 'jaxinpaint.masks', 'jaxinpaint.edges', 'jaxinpaint.data',
                         'jaxinpaint.baselines', 'jaxinpaint.figures', 'jaxinpaint.cli', 'jaxinpaint.weights.*')),
    ('models, losses', ('jaxinpaint.models.*', 'jaxinpaint.losses.*')),
    ('tasks', ('jaxinpaint.tasks.*',)),
    ('checkpoint', ('jaxinpaint.checkpoint',)),
    ('shipped models', ('jaxinpaint.pretrained',)),
    ('predictor', ('jaxinpaint.predictor',)),
    ('applications', ('jaxinpaint.training.*', 'jaxinpaint.evaluation', 'jaxinpaint.inpaint',
                      'jaxinpaint.demo.*', 'jaxinpaint.pretrained.export')),
    ('entry points', ('train', 'evaluate', 'jaxinpaint.demo.__main__', 'jaxinpaint.weights.__main__',
                      'jaxinpaint.weights.cli', 'jaxinpaint.pretrained.__main__')),
)
# Imports inside one layer: free among the building blocks (data uses masks and edges), inside one package
# (jaxinpaint.training.loop -> jaxinpaint.training.mesh), and these named ones between applications.
FREE_WITHIN = ('building blocks', 'entry points')
SAME_LAYER_EDGES = {('jaxinpaint.training', 'jaxinpaint.evaluation'), ('jaxinpaint.demo', 'jaxinpaint.inpaint'),
                    ('jaxinpaint.pretrained', 'jaxinpaint.evaluation')}
# Where model names may be compared: the model code itself.
MODEL_CODE = ('jaxinpaint/tasks/', 'jaxinpaint/models/')

_MODULE_NAME = re.compile(r'^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)+$')


# ------------------------------------------------------------------------------------------ the graph

def _modules() -> dict[str, pathlib.Path]:
  """Dotted name -> file for every module of the package and the entry-point scripts."""
  out = {}
  for path in sorted((REPO / PACKAGE).rglob('*.py')):
    parts = path.relative_to(REPO).with_suffix('').parts
    if parts[-1] == '__init__':
      parts = parts[:-1]
    out['.'.join(parts)] = path
  for script in ENTRY_SCRIPTS:
    out[script.removesuffix('.py')] = REPO / script
  return out


def _is_package(path: pathlib.Path) -> bool:
  return path.name == '__init__.py'


def _owner(name: str, modules: dict[str, pathlib.Path]) -> str | None:
  """The package module `name` refers to: itself, or the longest module prefix (an attribute of it)."""
  parts = name.split('.')
  for i in range(len(parts), 0, -1):
    candidate = '.'.join(parts[:i])
    if candidate in modules:
      return candidate
  return None


def _imports(name: str, path: pathlib.Path, modules: dict[str, pathlib.Path]) -> set[str]:
  """Every package module `name` imports, anywhere in its file."""
  tree = ast.parse(path.read_text(), filename=str(path))
  package = name if _is_package(path) else name.rpartition('.')[0]
  targets: set[str] = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      targets.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ''
      if node.level:
        anchor = package.split('.')[:len(package.split('.')) - (node.level - 1)]
        base = '.'.join(anchor + ([base] if base else []))
      for alias in node.names:
        sub = f'{base}.{alias.name}'
        targets.add(sub if sub in modules else base)
    elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_NAME.match(node.value):
      targets.add(node.value)  # importlib.import_module('...') and lazy-import tables
  edges = set()
  for target in targets:
    owner = _owner(target, modules) if target.startswith(PACKAGE) else None
    if owner is not None and owner != name:
      edges.add(owner)
  return edges


def _graph() -> dict[str, set[str]]:
  modules = _modules()
  return {name: _imports(name, path, modules) for name, path in modules.items()}


def _layer(name: str) -> int:
  """The rank of `name`'s layer: its most specific pattern (an exact name beats a package's 'x.*')."""
  best = None
  for rank, (_, patterns) in enumerate(LAYERS):
    for pattern in patterns:
      exact = name == pattern.removesuffix('.*')
      inside = pattern.endswith('.*') and name.startswith(pattern[:-1])
      if exact or inside:
        key = (len(pattern.removesuffix('.*')), not pattern.endswith('.*'))
        if best is None or key > best[0]:
          best = (key, rank)
  if best is None:
    raise AssertionError(f'module {name} is in no layer of LAYERS; add it to the table (and the README)')
  return best[1]


def _component(name: str) -> str:
  """The unit that may import itself freely: a subpackage (jaxinpaint.training) or a module."""
  return '.'.join(name.split('.')[:2])


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
  """Strongly connected components with more than one module (Tarjan)."""
  index: dict[str, int] = {}
  low: dict[str, int] = {}
  stack: list[str] = []
  on_stack: set[str] = set()
  out: list[list[str]] = []

  def visit(v: str) -> None:
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in sorted(graph.get(v, ())):
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      scc = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        scc.append(w)
        if w == v:
          break
      if len(scc) > 1:
        out.append(sorted(scc))

  for v in sorted(graph):
    if v not in index:
      visit(v)
  return out


@pytest.fixture(scope='module')
def graph() -> dict[str, set[str]]:
  return _graph()


# ------------------------------------------------------------------------------------------ the tests

def test_the_graph_sees_function_level_and_string_imports(tmp_path):
  """The collector itself: module- and function-level imports, relative imports, import_module strings."""
  modules = {'jaxinpaint': tmp_path / '__init__.py', 'jaxinpaint.a': tmp_path / 'a.py',
             'jaxinpaint.b': tmp_path / 'b.py', 'jaxinpaint.c': tmp_path / 'c.py',
             'jaxinpaint.pkg': tmp_path / 'pkg' / '__init__.py', 'jaxinpaint.pkg.d': tmp_path / 'pkg' / 'd.py',
             'jaxinpaint.pkg.e': tmp_path / 'pkg' / 'e.py'}
  source = tmp_path / 'pkg' / 'e.py'
  source.parent.mkdir()
  source.write_text('import numpy\nfrom jaxinpaint import a\nfrom . import d\nfrom jaxinpaint.b import thing\n'
                    'def f():\n  import importlib\n  from jaxinpaint import pkg\n'
                    "  return importlib.import_module('jaxinpaint.c')\n")
  assert _imports('jaxinpaint.pkg.e', source, modules) == {'jaxinpaint.a', 'jaxinpaint.pkg.d', 'jaxinpaint.b',
                                                           'jaxinpaint.pkg', 'jaxinpaint.c'}
  assert _cycles({'x': {'y'}, 'y': {'z'}, 'z': {'x'}, 'w': {'x'}}) == [['x', 'y', 'z']]


def test_every_module_has_a_layer(graph):
  for name in graph:
    _layer(name)
  names = [LAYERS[_layer(n)][0] for n in ('jaxinpaint.demo.__main__', 'jaxinpaint.demo', 'jaxinpaint.tasks.pconv')]
  assert names == ['entry points', 'applications', 'tasks']


def test_no_import_cycles(graph):
  cycles = _cycles(graph)
  assert not cycles, 'import cycles (function-level imports count):\n' + '\n'.join(
      ' <-> '.join(c) + ': ' + '; '.join(f'{a} -> {b}' for a in c for b in sorted(graph[a]) if b in c)
      for c in cycles)


def test_imports_point_down_the_layers(graph):
  bad = []
  for source, targets in graph.items():
    for target in targets:
      ls, lt = _layer(source), _layer(target)
      if lt < ls or _component(source) == _component(target):
        continue
      if lt == ls and (LAYERS[ls][0] in FREE_WITHIN
                       or (_component(source), _component(target)) in SAME_LAYER_EDGES):
        continue
      bad.append(f'{source} ({LAYERS[ls][0]}) imports {target} ({LAYERS[lt][0]})')
  assert not bad, 'imports that do not point down the layer table:\n' + '\n'.join(sorted(bad))


def _model_names() -> set[str]:
  from jaxinpaint import tasks  # pylint: disable=import-outside-toplevel
  names = set(tasks.names())
  assert {'pconv', 'edgeconnect'} <= names
  return names


def test_no_model_names_outside_the_model_code():
  """Only jaxinpaint/tasks and jaxinpaint/models may know which models exist; everything else asks the task.

  Any string constant equal to a registered model name counts (comparisons, `in (...)` tuples, loops over
  hard-coded names, lookup tables); names inside longer text (help strings) do not.
  """
  names = _model_names()
  files = [p for p in sorted((REPO / PACKAGE).rglob('*.py'))
           if not p.relative_to(REPO).as_posix().startswith(MODEL_CODE)]
  files += [REPO / s for s in ENTRY_SCRIPTS]
  bad = []
  for path in files:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
      if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
        bad.append(f'{path.relative_to(REPO)}:{node.lineno}: {node.value!r}')
  assert not bad, 'model names outside jaxinpaint/tasks and jaxinpaint/models:\n' + '\n'.join(bad)
