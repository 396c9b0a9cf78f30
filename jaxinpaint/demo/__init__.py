"""Web demo: paint holes on a photo in the browser and fill them with PConv, EdgeConnect or a classical method.

  python -m jaxinpaint.demo                                       # the shipped models; open the printed URL
  python -m jaxinpaint.demo --workdir runs/quickstart            # your own model instead of the shipped one
  python -m jaxinpaint.demo --no-pretrained --port 0              # classical methods only, any free port

A small page of our own served by the standard library's `ThreadingHTTPServer` -- no gradio, no CDN: the
HTML/JS/CSS in `static/` are served locally, so it works offline. The page uploads an image (or picks an
example: scikit-image's bundled photos, plus EdgeConnect-style `images/` + `masks/` folders given with
`--examples`), lets the user paint holes with an adjustable brush on a canvas, and POSTs the image and the
mask (PNG, white = hole) as JSON to `/api/inpaint`; the answer holds the result (PNG, known pixels exactly
the input's), the mask used and, for EdgeConnect, the edge map, shown side by side with a download button.

HTTP API (all JSON; errors are `{"error": message}` with status 400 / 413, and the server keeps serving):
  * `GET /api/info` -> methods (available or not, with why), examples, limits, how to get a model
    (`training`: per model kind, the commands of its task's `quickstart` and the demo command to restart with).
  * `GET /api/example?id=ID` -> `{image, mask|null, width, height, name}` (data URLs).
  * `POST /api/upload` (raw file bytes) -> `{image, width, height}`: validates and normalises an upload
    (decodable image, at most `MAX_PIXELS`, EXIF orientation applied, RGB PNG).
  * `POST /api/inpaint` `{image, mask, method}` (PNG data URLs; mask white = hole) -> `{image, mask,
    edge|null, method, seconds, width, height, hole_fraction}`.

Limits: images above `MAX_PIXELS` (16 megapixels) are rejected with a message (the check reads only the
file header, so a 50-megapixel upload costs nothing); the trained networks take images up to
`MAX_MODEL_PIXELS` (4 megapixels, `--max-model-pixels`; the classical methods take all 16); request bodies
above `MAX_BODY_BYTES` get 413.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import dataclasses
import http.server
import io
import json
import pathlib
import sys
import time
import traceback
import urllib.parse
from typing import Any

import numpy as np
from PIL import Image

from jaxinpaint import baselines
from jaxinpaint import data as data_lib
from jaxinpaint import inpaint as inpaint_lib
from jaxinpaint import masks as masks_lib
from jaxinpaint import pretrained
from jaxinpaint import tasks

__all__ = ['MAX_PIXELS', 'MAX_MODEL_PIXELS', 'MAX_BODY_BYTES', 'QUICKSTART', 'DemoApp', 'DemoError', 'make_server', 'main']

MAX_PIXELS = inpaint_lib.MAX_PIXELS
# Above this the demo asks for a smaller image or a classical method rather than risk exhausting memory.
MAX_MODEL_PIXELS = inpaint_lib.MAX_MODEL_PIXELS
MAX_BODY_BYTES = 256 * 2**20  # a 16 MP image + mask as base64 PNG fits comfortably
QUICKSTART = 'python train.py --config configs/quickstart.py --workdir runs/quickstart'
STATIC_DIR = pathlib.Path(__file__).with_name('static')
_STATIC_TYPES = {'.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
                 '.css': 'text/css; charset=utf-8', '.png': 'image/png', '.svg': 'image/svg+xml'}
# scikit-image's bundled colour photos (no download needed): id -> (function name, label).
_BUILTIN_EXAMPLES = {
    'astronaut': ('astronaut', 'Astronaut (scikit-image)'),
    'coffee': ('coffee', 'Coffee (scikit-image)'),
    'chelsea': ('chelsea', 'Chelsea the cat (scikit-image)'),
    'rocket': ('rocket', 'Rocket (scikit-image)'),
    'hubble': ('hubble_deep_field', 'Hubble deep field (scikit-image)'),
}


class DemoError(ValueError):
  """A problem with the user's input, shown on the page as is."""

  def __init__(self, message: str, status: int = 400):
    super().__init__(message)
    self.status = status


@dataclasses.dataclass
class _Method:
  id: str
  label: str
  available: bool
  note: str = ''
  inpainter: inpaint_lib.Inpainter | None = None


# --------------------------------------------------------------------------------------- images

def _png_data_url(array: np.ndarray) -> str:
  buf = io.BytesIO()
  Image.fromarray(array).save(buf, format='PNG', compress_level=1)
  return 'data:image/png;base64,' + base64.b64encode(buf.getvalue()).decode('ascii')


def _from_data_url(value: Any, what: str) -> bytes:
  if not isinstance(value, str) or not value:
    raise DemoError(f'The request has no {what} (expected a PNG data URL).')
  if value.startswith('data:'):
    _, _, value = value.partition(',')
  try:
    return base64.b64decode(value, validate=False)
  except (binascii.Error, ValueError):
    raise DemoError(f'The {what} is not valid base64 data.') from None


def decode_image(data: bytes, what: str = 'upload') -> np.ndarray:
  """Bytes of an image file -> uint8 (H, W, 3) RGB; DemoError for non-images and images above MAX_PIXELS."""
  if not data:
    raise DemoError(f'The {what} is empty.')
  try:
    img = Image.open(io.BytesIO(data))
  except Image.DecompressionBombError:
    raise DemoError(f'The {what} is far too large (over {MAX_PIXELS / 1e6:.0f} megapixels).') from None
  except (OSError, SyntaxError, ValueError):
    raise DemoError(f'The {what} is not an image this demo can read: upload a PNG, JPEG, BMP, TIFF or WebP '
                    'photo.') from None
  w, h = img.size  # from the header: nothing decoded yet
  if w * h > MAX_PIXELS:
    raise DemoError(f'The {what} is {w}x{h} = {w * h / 1e6:.1f} megapixels; this demo accepts at most '
                    f'{MAX_PIXELS / 1e6:.0f} megapixels. Downscale it and try again.')
  try:
    img.load()
    # EXIF orientation applied, transparency on white (as the page shows it), 16-bit rounded to 8 bits.
    return data_lib.to_uint8(data_lib.pil_to_array(img))
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
    raise DemoError(f'The {what} could not be decoded (truncated or corrupt image file).') from None


# ------------------------------------------------------------------------------------------ app

def _training(kind: str) -> dict[str, Any]:
  """How to get a model of a registered kind: its task's quickstart commands, then the demo command."""
  commands = list(tasks.quickstart(kind))
  last = commands[-1].split() if commands else []
  workdir = last[last.index('--workdir') + 1] if '--workdir' in last[:-1] else 'WORKDIR'
  return {'id': kind, 'label': tasks.label(kind), 'commands': commands,
          'demo': f'python -m jaxinpaint.demo --workdir {workdir}'}


def how_to_train(kind: str) -> str:
  """`_training(kind)` as one sentence."""
  t = _training(kind)
  steps = '  then  '.join(t['commands']) or 'python train.py --config CONFIG --workdir WORKDIR'
  return f'Train one with:  {steps}  and restart the demo with:  {t["demo"]}'


class DemoApp:
  """The demo's state and request logic, independent of HTTP (so it can be tested directly).

  Args:
    workdirs: training workdirs / checkpoints to load (one per model kind, e.g. a PConv and an
      EdgeConnect one). A path that cannot be loaded is reported (console and page) and the demo starts
      without it.
    use_pretrained: for every registered model kind without a workdir, load the shipped model of that kind
      (`jaxinpaint.pretrained.default_for`), if one is installed. Kinds left without a model are listed as
      unavailable.
    examples: optional folder with EdgeConnect-style example inputs: `images/` + `masks/` (white = hole,
      paired by file name), directly or one level down (e.g. `edgeconnect_examples/places2/images`).
    bucket: shape-bucket size passed to the model inpainters.
    max_model_pixels: largest image (pixels) given to a trained network; classical methods take up to
      `MAX_PIXELS`.
  """

  def __init__(self, *, workdirs: tuple[str, ...] | list[str] = (), examples: str | None = None, bucket: int = 64,
               max_model_pixels: int = MAX_MODEL_PIXELS, use_pretrained: bool = True):
    self.max_model_pixels = int(max_model_pixels)
    self.problems: list[str] = []
    self.methods: dict[str, _Method] = {}
    for workdir in workdirs:
      try:
        inpainter = inpaint_lib.Inpainter.from_checkpoint(workdir, bucket=bucket)
      except (FileNotFoundError, ValueError) as e:
        self.problems.append(f'Could not load a model from {workdir}: {e}')
        continue
      kind = inpainter.name
      if kind in self.methods:
        self.problems.append(f'{workdir}: a {kind} model is already loaded; ignoring this one.')
        continue
      label = f'{inpainter.info["label"]}, step {inpainter.info["step"]}'
      self.methods[kind] = _Method(kind, label, True, str(inpainter.info['checkpoint']), inpainter)
    for kind in tasks.names():
      name = pretrained.default_for(kind) if use_pretrained and kind not in self.methods else None
      if name is None:
        continue
      try:
        inpainter = inpaint_lib.Inpainter.from_pretrained(name, bucket=bucket)
      except (FileNotFoundError, ValueError) as e:
        self.problems.append(f'Could not load the shipped model {name}: {e}')
        continue
      label = f'{inpainter.info["label"]}, shipped model {name} (step {inpainter.info["step"]})'
      self.methods[kind] = _Method(kind, label, True, str(inpainter.info['checkpoint']), inpainter)
    for kind in tasks.names():
      if kind not in self.methods:
        self.methods[kind] = _Method(kind, tasks.label(kind), False,
                                     f'no {kind} checkpoint loaded (--workdir). {how_to_train(kind)}')
    for name, label in baselines.LABELS.items():
      try:
        self.methods[name] = _Method(name, label, True, '', inpaint_lib.Inpainter.from_method(name))
      except ImportError as e:
        self.methods[name] = _Method(name, label, False, str(e))
    self.examples: dict[str, dict[str, Any]] = {
        key: {'id': key, 'label': label, 'fn': fn} for key, (fn, label) in _BUILTIN_EXAMPLES.items()}
    if examples:
      self._add_example_folder(pathlib.Path(examples))

  def _add_example_folder(self, root: pathlib.Path) -> None:
    if not root.is_dir():
      self.problems.append(f'--examples {root}: no such directory')
      return
    image_dirs = [root / 'images'] if (root / 'images').is_dir() else sorted(root.glob('*/images'))
    found = 0
    for image_dir in image_dirs:
      mask_dir = image_dir.parent / 'masks'
      masks = {p.stem: p for p in sorted(mask_dir.glob('*'))} if mask_dir.is_dir() else {}
      for path in sorted(image_dir.iterdir()):
        if path.suffix.lower() in masks_lib.IMAGE_EXTENSIONS:
          key = f'{image_dir.parent.name}/{path.stem}'
          self.examples[key] = {'id': key, 'label': f'{path.stem} (EdgeConnect example)', 'path': path,
                                'mask': masks.get(path.stem)}
          found += 1
    if not found:
      self.problems.append(f'--examples {root}: no images/ folder with images found')

  @property
  def has_model(self) -> bool:
    return any(m.available and m.inpainter is not None and m.inpainter.is_model for m in self.methods.values())

  def _default_method(self) -> str | None:
    """A model given with --workdir, else the shipped default model (`pretrained.DEFAULT`), else the first
    available method."""
    available = [m for m in self.methods.values() if m.available]
    for wanted in (lambda m: m.inpainter is not None and m.inpainter.is_model and 'pretrained' not in m.inpainter.info,
                   lambda m: m.inpainter is not None and m.inpainter.info.get('pretrained') == pretrained.DEFAULT,
                   lambda m: True):
      chosen = next((m.id for m in available if wanted(m)), None)
      if chosen is not None:
        return chosen
    return None

  def info(self) -> dict[str, Any]:
    help_text = None
    if not self.has_model:
      help_text = ('No trained model is loaded, so only the classical methods work. Small models train on CPU '
                   'in minutes. ' + ' '.join(f'{tasks.label(kind)}: {how_to_train(kind)}' for kind in tasks.names()))
    return {
        'methods': [{'id': m.id, 'label': m.label, 'available': m.available, 'note': m.note}
                    for m in self.methods.values()],
        'default_method': self._default_method(),
        'examples': [{'id': e['id'], 'label': e['label']} for e in self.examples.values()],
        'max_pixels': MAX_PIXELS,
        'max_model_pixels': self.max_model_pixels,
        'model_help': help_text,
        'quickstart': QUICKSTART,
        'training': [_training(kind) for kind in tasks.names()],
        'problems': self.problems,
    }

  def example(self, key: str) -> dict[str, Any]:
    entry = self.examples.get(key)
    if entry is None:
      raise DemoError(f'Unknown example {key!r}.')
    mask = None
    if 'fn' in entry:
      import skimage.data  # pylint: disable=import-outside-toplevel
      image = np.asarray(getattr(skimage.data, entry['fn'])())[..., :3].astype(np.uint8)
    else:
      image = inpaint_lib.load_image(entry['path'])
      if entry.get('mask') is not None:
        hole = masks_lib.load(entry['mask'], hole_value=255, shape=image.shape[:2]) < 0.5
        mask = _png_data_url(hole.astype(np.uint8) * 255)
    return {'image': _png_data_url(image), 'mask': mask, 'width': image.shape[1], 'height': image.shape[0],
            'name': entry['id'].replace('/', '_')}

  def upload(self, data: bytes) -> dict[str, Any]:
    image = decode_image(data, 'upload')
    return {'image': _png_data_url(image), 'width': image.shape[1], 'height': image.shape[0]}

  def inpaint(self, request: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(request, dict):
      raise DemoError('Expected a JSON object {"image", "mask", "method"}.')
    method_id = request.get('method')
    method = self.methods.get(method_id) if isinstance(method_id, str) else None
    if method is None:
      raise DemoError(f'Unknown method {method_id!r}; choose one of {", ".join(self.methods)}.')
    if not method.available:
      raise DemoError(f'{method.label} is not available: {method.note}')
    image = decode_image(_from_data_url(request.get('image'), 'image'), 'image')
    mask_img = decode_image(_from_data_url(request.get('mask'), 'mask'), 'mask')
    if mask_img.shape[:2] != image.shape[:2]:
      raise DemoError(f'The mask is {mask_img.shape[1]}x{mask_img.shape[0]} but the image is '
                      f'{image.shape[1]}x{image.shape[0]}; reload the image and paint again.')
    h, w = image.shape[:2]
    if method.inpainter.is_model and h * w > self.max_model_pixels:
      raise DemoError(f'{method.label} runs on images of at most {self.max_model_pixels / 1e6:g} megapixels in this '
                      f'demo (memory); this one is {w}x{h} = {w * h / 1e6:.1f} megapixels. Downscale it, or use '
                      'Telea, Navier-Stokes or PatchMatch.')
    hole = mask_img.mean(axis=-1) >= 128  # white = hole
    if not hole.any():
      raise DemoError('The mask is empty: paint over the part of the image you want to fill, then run again.')
    if hole.all():
      raise DemoError('The mask covers the whole image: leave some of the photo unpainted so there is '
                      'something to fill the hole from.')
    start = time.perf_counter()
    result = method.inpainter.inpaint(image, hole)
    seconds = time.perf_counter() - start
    edge = None
    if result.edge is not None:
      edge = _png_data_url(np.rint(255.0 * (1.0 - np.clip(result.edge, 0, 1))).astype(np.uint8))  # black edges
    return {'image': _png_data_url(result.image), 'mask': _png_data_url(hole.astype(np.uint8) * 255),
            'edge': edge, 'method': method.id, 'label': method.label, 'seconds': round(seconds, 3),
            'width': image.shape[1], 'height': image.shape[0], 'hole_fraction': float(hole.mean())}


# ----------------------------------------------------------------------------------------- HTTP

class _Handler(http.server.BaseHTTPRequestHandler):
  server_version = 'jaxinpaint-demo'
  protocol_version = 'HTTP/1.1'
  app: DemoApp  # set on the subclass made by make_server
  quiet: bool = False

  def log_message(self, format, *args):  # pylint: disable=redefined-builtin
    if not self.quiet:
      sys.stderr.write(f'[demo] {self.address_string()} {format % args}\n')

  def _send(self, status: int, body: bytes, content_type: str) -> None:
    self.send_response(status)
    self.send_header('Content-Type', content_type)
    self.send_header('Content-Length', str(len(body)))
    self.send_header('Cache-Control', 'no-store')
    self.send_header('X-Content-Type-Options', 'nosniff')
    self.end_headers()
    self.wfile.write(body)

  def _json(self, status: int, obj: Any) -> None:
    self._send(status, json.dumps(obj).encode(), 'application/json')

  def _guard(self, fn, *args) -> None:
    try:
      self._json(200, fn(*args))
    except DemoError as e:
      self._json(e.status, {'error': str(e)})
    except (FileNotFoundError, ValueError) as e:  # e.g. the Inpainter's own input checks
      self._json(400, {'error': str(e)})
    except Exception as e:  # pylint: disable=broad-except
      traceback.print_exc()
      self._json(500, {'error': f'Internal error ({type(e).__name__}: {e}); the server is still running.'})

  def do_GET(self):  # pylint: disable=invalid-name
    url = urllib.parse.urlsplit(self.path)
    if url.path in ('/', '/index.html'):
      return self._static('index.html')
    if url.path.startswith('/static/'):
      return self._static(url.path[len('/static/'):])
    if url.path == '/api/info':
      return self._guard(self.app.info)
    if url.path == '/api/example':
      key = urllib.parse.parse_qs(url.query).get('id', [''])[0]
      return self._guard(self.app.example, key)
    if url.path == '/healthz':
      return self._send(200, b'ok', 'text/plain')
    return self._json(404, {'error': f'not found: {url.path}'})

  def _static(self, name: str) -> None:
    path = (STATIC_DIR / name).resolve()
    if STATIC_DIR.resolve() not in path.parents or not path.is_file() or path.suffix not in _STATIC_TYPES:
      return self._json(404, {'error': f'not found: {name}'})
    self._send(200, path.read_bytes(), _STATIC_TYPES[path.suffix])

  def _body(self) -> bytes | None:
    try:
      length = int(self.headers.get('Content-Length', ''))
      if length < 0:
        raise ValueError(length)
    except ValueError:  # a negative length would read until the client hangs up
      self._json(411, {'error': 'A Content-Length header (bytes, >= 0) is required.'})
      self.close_connection = True
      return None
    if length > MAX_BODY_BYTES:
      self._json(413, {'error': f'The request is {length / 2**20:.0f} MB; the limit is {MAX_BODY_BYTES // 2**20} MB '
                                f'(images up to {MAX_PIXELS / 1e6:.0f} megapixels).'})
      self.close_connection = True  # the unread body must not be parsed as the next request
      return None
    return self.rfile.read(length)

  def do_POST(self):  # pylint: disable=invalid-name
    url = urllib.parse.urlsplit(self.path)
    if url.path not in ('/api/upload', '/api/inpaint'):
      return self._json(404, {'error': f'not found: {url.path}'})
    body = self._body()
    if body is None:
      return None
    if url.path == '/api/upload':
      return self._guard(self.app.upload, body)
    try:
      request = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
      return self._json(400, {'error': 'The request is not valid JSON.'})
    return self._guard(self.app.inpaint, request)


def make_server(app: DemoApp, *, host: str = '127.0.0.1', port: int = 7860,
                quiet: bool = False) -> http.server.ThreadingHTTPServer:
  """A ThreadingHTTPServer serving `app` (port 0 = a free port; see `server.server_address`)."""
  handler = type('Handler', (_Handler,), {'app': app, 'quiet': quiet})
  server = http.server.ThreadingHTTPServer((host, port), handler)
  server.daemon_threads = True
  return server


def _parser() -> argparse.ArgumentParser:
  parser = inpaint_lib.cli_parser(
      'demo',
      description='Web demo: paint holes on a photo and fill them with PConv / EdgeConnect / Telea / NS / '
                  'PatchMatch. Runs offline; open the printed URL in a browser.',
      epilog='Without --workdir the shipped models are offered (and the classical methods). Train your own with:'
             f'\n  {QUICKSTART}')
  parser.add_argument('--workdir', action='append', default=[],
                      help='training workdir or checkpoint to load (repeat for a PConv and an EdgeConnect model); '
                           'replaces the shipped model of its kind')
  parser.add_argument('--no-pretrained', dest='pretrained', action='store_false',
                      help='do not load the shipped models (python -m jaxinpaint.pretrained list) for the kinds '
                           'without a --workdir')
  parser.add_argument('--examples', help='folder of EdgeConnect-style examples (images/ + masks/, or */images)')
  parser.add_argument('--host', default='127.0.0.1', help='interface to listen on (default 127.0.0.1)')
  parser.add_argument('--port', type=int, default=7860, help='port (default 7860; 0 = any free port)')
  parser.add_argument('--bucket', type=int, default=64, help='shape-bucket size for the models (default 64)')
  parser.add_argument('--max-model-pixels', type=int, default=MAX_MODEL_PIXELS,
                      help=f'largest image given to a trained model (default {MAX_MODEL_PIXELS}; uploads are '
                           f'limited to {MAX_PIXELS} pixels)')
  parser.add_argument('--quiet', action='store_true', help='do not log every request')
  return parser


def main(argv: list[str] | None = None) -> int:
  args = _parser().parse_args(argv)
  if args.workdir:
    from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
    absl_logging.set_verbosity(absl_logging.ERROR)
  app = DemoApp(workdirs=args.workdir, examples=args.examples, bucket=args.bucket,
                max_model_pixels=args.max_model_pixels, use_pretrained=args.pretrained)
  for problem in app.problems:
    print(f'jaxinpaint.demo: warning: {problem}', file=sys.stderr)
  for method in app.methods.values():
    if method.available and method.inpainter is not None and method.inpainter.is_model:
      print(f'jaxinpaint.demo: {method.id}: {method.label} from {method.note}', file=sys.stderr)
  if not app.has_model:
    print(f'jaxinpaint.demo: no trained model loaded; offering the classical methods. Get a model with: {QUICKSTART}',
          file=sys.stderr)
  try:
    server = make_server(app, host=args.host, port=args.port, quiet=args.quiet)
  except OSError as e:
    print(f'jaxinpaint.demo: error: cannot listen on {args.host}:{args.port}: {e}', file=sys.stderr)
    return 2
  host, port = server.server_address[:2]
  shown = '127.0.0.1' if host in ('0.0.0.0', '') else host
  print(f'jaxinpaint demo: serving on http://{shown}:{port}/  (Ctrl+C to stop)', flush=True)
  try:
    server.serve_forever()
  except KeyboardInterrupt:
    pass
  finally:
    server.server_close()
  return 0

