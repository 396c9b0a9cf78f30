"""Tests for the web demo (jaxinpaint.demo): the HTTP API in-process, and the page in a real headless browser.

The browser tests drive Debian's chromium (/usr/bin/chromium, or $JAXINPAINT_CHROMIUM) with Playwright's
Python package -- never a downloaded browser -- against `python -m jaxinpaint.demo --port 0` started in a
subprocess: upload a Places photo, paint a stroke with mouse events, fill it with PConv (a tiny checkpoint
trained here with the project's trainer), EdgeConnect (an initialised tiny checkpoint) and Telea, download
the result, and check it has the input's size and differs from the input only inside the painted stroke.
Screenshots go to test-artifacts/.
"""

import base64
import http.client
import io
import json
import math
import os
import pathlib
import queue
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image
from PIL import ImageOps

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import test_inpaint as checkpoints  # pylint: disable=g-import-not-at-top,wrong-import-position

from jaxinpaint import demo  # pylint: disable=wrong-import-position
from jaxinpaint import tasks  # pylint: disable=wrong-import-position

REPO = pathlib.Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get('JAXINPAINT_CHROMIUM', '/usr/bin/chromium')
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync', '--no-first-run']
PHOTO = 'cmgan_places365_test/Places365_test_00000002.jpg'  # 512x514 JPEG: an odd, non-square size
BRUSH = 24  # the page's default brush size (screen pixels)


# ------------------------------------------------------------------------------------------ helpers

def _png_bytes(array: np.ndarray) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(array).save(buf, format='PNG')
  return buf.getvalue()


def _data_url(array: np.ndarray) -> str:
  return 'data:image/png;base64,' + base64.b64encode(_png_bytes(array)).decode()


def _decode_data_url(url: str) -> np.ndarray:
  return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.partition(',')[2]))))


def _post(base: str, path: str, body: bytes, content_type: str = 'application/json'):
  req = urllib.request.Request(base + path, data=body, headers={'Content-Type': content_type}, method='POST')
  try:
    with urllib.request.urlopen(req, timeout=300) as resp:
      return resp.status, json.loads(resp.read())
  except urllib.error.HTTPError as e:
    return e.code, json.loads(e.read())


def _get(base: str, path: str):
  with urllib.request.urlopen(base + path, timeout=60) as resp:
    return resp.status, resp.read()


@pytest.fixture(scope='module')
def big_image_file(tmp_path_factory) -> pathlib.Path:
  """A real 50-megapixel PNG (bilevel, so it is small and quick to write)."""
  path = tmp_path_factory.mktemp('big') / 'fifty_megapixels.png'
  Image.new('1', (10_000, 5_000)).save(path)
  return path


@pytest.fixture(scope='module')
def inprocess_server():
  """The demo without any model, served from a thread (fast; for the HTTP API tests)."""
  app = demo.DemoApp(workdirs=['/nonexistent/workdir'], use_pretrained=False)  # module scope: no env override yet
  server = demo.make_server(app, port=0, quiet=True)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  yield f'http://127.0.0.1:{server.server_address[1]}'
  server.shutdown()
  server.server_close()


# ------------------------------------------------------------------------------------------ HTTP API

def test_info_without_model(inprocess_server):
  status, body = _get(inprocess_server, '/api/info')
  info = json.loads(body)
  assert status == 200
  methods = {m['id']: m for m in info['methods']}
  assert methods['telea']['available'] and methods['ns']['available']
  assert not methods['pconv']['available'] and not methods['edgeconnect']['available']
  assert demo.QUICKSTART in info['model_help']
  assert demo.QUICKSTART == 'python train.py --config configs/quickstart.py --workdir runs/quickstart'
  assert any('/nonexistent/workdir' in p for p in info['problems'])
  assert {'astronaut', 'coffee', 'chelsea'} <= {e['id'] for e in info['examples']}
  status, body = _get(inprocess_server, '/api/example?id=chelsea')
  example = json.loads(body)
  assert _decode_data_url(example['image']).shape == (300, 451, 3) and example['mask'] is None


def test_http_inpaint_and_bad_inputs(inprocess_server, big_image_file):
  base = inprocess_server
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (61, 83, 3), dtype=np.uint8)
  hole = np.zeros((61, 83), bool)
  hole[20:30, 30:50] = True
  mask = hole.astype(np.uint8) * 255

  def inpaint(img, msk, method='telea'):
    return _post(base, '/api/inpaint', json.dumps({'image': img, 'mask': msk, 'method': method}).encode())

  status, out = inpaint(_data_url(image), _data_url(mask))
  assert status == 200, out
  result = _decode_data_url(out['image'])
  assert result.shape == image.shape
  np.testing.assert_array_equal(result[~hole], image[~hole])
  assert (result[hole] != image[hole]).any()
  np.testing.assert_array_equal(_decode_data_url(out['mask']) == 255, hole)
  assert out['edge'] is None and out['width'] == 83 and out['height'] == 61

  cases = [
      (inpaint(_data_url(image), _data_url(np.zeros_like(mask))), 'mask is empty'),
      (inpaint(_data_url(image), _data_url(np.full_like(mask, 255))), 'covers the whole image'),
      (inpaint(_data_url(image), _data_url(mask[:30])), 'the mask is 83x30 but the image is 83x61'),
      (inpaint(_data_url(image), _data_url(mask), 'magic'), 'Unknown method'),
      (inpaint(_data_url(image), _data_url(mask), 'pconv'), 'train.py --config configs/quickstart.py'),
      (inpaint('data:image/png;base64,aGVsbG8=', _data_url(mask)), 'not an image'),
      (inpaint(None, _data_url(mask)), 'no image'),
      (_post(base, '/api/inpaint', b'{not json'), 'not valid JSON'),
      (_post(base, '/api/upload', b'just some text', 'application/octet-stream'), 'not an image'),
      (_post(base, '/api/upload', b'', 'application/octet-stream'), 'empty'),
      (_post(base, '/api/upload', big_image_file.read_bytes(), 'application/octet-stream'),
       '10000x5000 = 50.0 megapixels; this demo accepts at most 16 megapixels'),
  ]
  for (status, body), expected in cases:
    assert status == 400, body
    assert expected.lower() in body['error'].lower(), (expected, body)

  # An oversized request is refused from its Content-Length alone.
  conn = http.client.HTTPConnection('127.0.0.1', int(base.rsplit(':', 1)[1]), timeout=30)
  conn.putrequest('POST', '/api/upload')
  conn.putheader('Content-Length', str(demo.MAX_BODY_BYTES + 1))
  conn.endheaders()
  resp = conn.getresponse()
  assert resp.status == 413 and 'limit' in json.loads(resp.read())['error']
  conn.close()

  # Still serving.
  assert _get(base, '/healthz') == (200, b'ok')
  status, up = _post(base, '/api/upload', _png_bytes(image), 'application/octet-stream')
  assert status == 200 and (_decode_data_url(up['image']) == image).all()


def test_upload_normalises_rgba_and_orientation(inprocess_server):
  rgba = np.zeros((4, 6, 4), np.uint8)
  rgba[..., 0] = 200
  rgba[:, :3, 3] = 255  # left half opaque red, right half transparent -> white
  status, up = _post(inprocess_server, '/api/upload', _png_bytes(rgba), 'application/octet-stream')
  got = _decode_data_url(up['image'])
  assert status == 200 and got.shape == (4, 6, 3)
  np.testing.assert_array_equal(got[:, :3], [[[200, 0, 0]] * 3] * 4)
  np.testing.assert_array_equal(got[:, 3:], 255)
  # EXIF orientation 6 (rotate 90 degrees clockwise to display): a 6x4 JPEG is shown 4x6.
  img = Image.fromarray(np.full((4, 6, 3), 128, np.uint8))
  exif = Image.Exif()
  exif[0x0112] = 6
  buf = io.BytesIO()
  img.save(buf, format='JPEG', exif=exif)
  status, up = _post(inprocess_server, '/api/upload', buf.getvalue(), 'application/octet-stream')
  assert status == 200 and _decode_data_url(up['image']).shape == (6, 4, 3)


def test_model_pixel_limit():
  app = demo.DemoApp()
  rec = checkpoints.Recorder(0.5)
  app.methods['pconv'] = demo._Method('pconv', 'PConv', True, '', demo.inpaint_lib.Inpainter(rec, name='pconv'))  # pylint: disable=protected-access
  app.max_model_pixels = 1000
  image = np.zeros((40, 30, 3), np.uint8)
  mask = np.zeros((40, 30), np.uint8)
  mask[5:10, 5:10] = 255
  request = {'image': _data_url(image), 'mask': _data_url(mask), 'method': 'pconv'}
  with pytest.raises(demo.DemoError, match='at most 0.001 megapixels.*30x40 = 0.0 megapixels.*Telea'):
    app.inpaint(request)
  assert not rec.calls
  assert app.inpaint({**request, 'method': 'telea'})['width'] == 30  # classical methods are not limited
  app.max_model_pixels = 1200
  out = app.inpaint(request)
  assert (_decode_data_url(out['image'])[5:10, 5:10] == 128).all() and len(rec.calls) == 1


def test_demo_help():
  proc = subprocess.run([sys.executable, '-m', 'jaxinpaint.demo', '--help'], capture_output=True, text=True,
                        timeout=120, cwd=REPO)
  assert proc.returncode == 0 and '--workdir' in proc.stdout and '--port' in proc.stdout
  assert 'configs/quickstart.py' in proc.stdout


# ------------------------------------------------------------------------------------------ browser

@pytest.fixture(scope='module')
def browser():
  try:
    from playwright.sync_api import sync_playwright  # pylint: disable=import-outside-toplevel
  except ImportError:
    pytest.skip('the playwright Python package is not installed (pip install playwright; the browser test uses '
                'the system chromium, no `playwright install` needed)')
  if not os.path.exists(CHROMIUM):
    pytest.skip(f'chromium not found at {CHROMIUM} (apt-get install chromium, or set JAXINPAINT_CHROMIUM)')
  with sync_playwright() as p:
    b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture(scope='module')
def models(request, tmp_path_factory):
  """{'pconv': workdir or None, 'edgeconnect': workdir or None, 'why': {...}} for the demo subprocess."""
  root = checkpoints._cache_root(request, tmp_path_factory)  # pylint: disable=protected-access
  out = {'why': {}}
  for name, make in (('pconv', checkpoints.train_tiny_pconv), ('edgeconnect', checkpoints.make_tiny_edgeconnect)):
    try:
      out[name] = make(root)
    except pytest.skip.Exception as e:  # the trainer's config is not in this checkout: skip those sub-tests
      out[name] = None
      out['why'][name] = ('skip', str(e))
    except Exception as e:  # pylint: disable=broad-except
      # A broken trainer fails its own sub-tests; the classical-method tests still run.
      out[name] = None
      out['why'][name] = ('fail', f'could not make a tiny {name} checkpoint: {e}')
  return out


@pytest.fixture(scope='module')
def demo_url(models, shared_data):
  cmd = [sys.executable, '-m', 'jaxinpaint.demo', '--port', '0', '--quiet',
         '--examples', str(shared_data / 'edgeconnect_examples')]
  for name in ('pconv', 'edgeconnect'):
    if models[name] is not None:
      cmd += ['--workdir', str(models[name])]
  proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  lines: queue.Queue = queue.Queue()
  threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
  stderr_lines: list[str] = []
  threading.Thread(target=lambda: [stderr_lines.append(line) for line in proc.stderr], daemon=True).start()
  try:
    try:
      line = lines.get(timeout=300)
    except queue.Empty:
      pytest.fail('the demo printed no URL within 300 s:\n' + ''.join(stderr_lines))
    assert line.startswith('jaxinpaint demo: serving on http://127.0.0.1:'), line
    url = line.split()[4].rstrip('/')
    yield url
    assert proc.poll() is None, 'the demo server died:\n' + ''.join(stderr_lines)
  finally:
    proc.terminate()
    try:
      proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
      proc.kill()


@pytest.fixture()
def page(browser, demo_url):
  context = browser.new_context(viewport={'width': 1400, 'height': 950}, accept_downloads=True)
  pg = context.new_page()
  outside = []
  pg.on('request', lambda r: outside.append(r.url) if not r.url.startswith((demo_url, 'data:', 'blob:')) else None)
  pg.goto(demo_url + '/')
  pg.wait_for_selector('#method option[value=telea]', state='attached')
  yield pg
  assert not outside, f'the page requested non-local resources: {outside}'
  context.close()


def _wait_done(pg, timeout=300_000) -> str:
  pg.wait_for_function("document.querySelector('#message').className !== 'busy'", timeout=timeout)
  return pg.inner_text('#message')


def _upload(pg, path):
  pg.set_input_files('#file', str(path))
  _wait_done(pg)
  pg.wait_for_selector('#stage:not(.empty)')


def _paint(pg, points) -> tuple[np.ndarray, float]:
  """Paints a stroke through `points` (fractions of the canvas); returns the points in image pixels, scale."""
  box = pg.locator('#canvas-mask').bounding_box()
  width = pg.evaluate("document.getElementById('canvas-mask').width")
  scale = width / box['width']
  screen = [(box['x'] + fx * box['width'], box['y'] + fy * box['height']) for fx, fy in points]
  pg.mouse.move(*screen[0])
  pg.mouse.down()
  for (x0, y0), (x1, y1) in zip(screen, screen[1:]):
    pg.mouse.move(x1, y1, steps=8)
  pg.mouse.up()
  image_points = np.array([((x - box['x']) * scale, (y - box['y']) * scale) for x, y in screen])
  return image_points, scale


def _distance_to_polyline(h: int, w: int, points: np.ndarray) -> np.ndarray:
  """Distance of every pixel centre to the polyline (image coordinates, x right, y down)."""
  y, x = np.mgrid[0:h, 0:w] + 0.5
  best = np.full((h, w), np.inf)
  for (ax, ay), (bx, by) in zip(points, points[1:]):
    dx, dy = bx - ax, by - ay
    t = np.clip(((x - ax) * dx + (y - ay) * dy) / max(dx * dx + dy * dy, 1e-9), 0, 1)
    best = np.minimum(best, np.hypot(x - (ax + t * dx), y - (ay + t * dy)))
  return best


def _run(pg, method) -> str:
  pg.select_option('#method', method)
  pg.click('#run')
  return _wait_done(pg)


def _download(pg, tmp_path) -> np.ndarray:
  with pg.expect_download() as info:
    pg.click('#download')
  target = tmp_path / info.value.suggested_filename
  info.value.save_as(target)
  return np.asarray(Image.open(target))


def test_page_offline_and_methods(page, models):
  options = page.eval_on_selector_all('#method option', 'os => os.map(o => [o.value, o.disabled])')
  options = dict(options)
  assert options['telea'] is False and options['ns'] is False
  assert options['pconv'] is (models['pconv'] is None)
  assert options['edgeconnect'] is (models['edgeconnect'] is None)
  examples = page.eval_on_selector_all('#example option', 'os => os.map(o => o.value)')
  assert 'astronaut' in examples and 'places2/places2_06' in examples


@pytest.mark.parametrize('method', ['telea', 'pconv', 'edgeconnect'])
def test_paint_and_fill(page, models, shared_data, artifacts_dir, tmp_path, method):
  if method in models and models[method] is None:
    kind, why = models['why'][method]
    (pytest.skip if kind == 'skip' else pytest.fail)(why)
  photo = shared_data / 'places' / PHOTO
  expected = np.asarray(ImageOps.exif_transpose(Image.open(photo)).convert('RGB'))
  _upload(page, photo)
  points, scale = _paint(page, [(0.2, 0.3), (0.45, 0.45), (0.7, 0.4), (0.75, 0.7)])
  message = _run(page, method)
  assert message.startswith('Done'), message
  result = _download(page, tmp_path)
  assert result.shape == expected.shape  # (514, 512, 3): the input's size
  # The painted region, independently of the page: pixels within the brush radius of the stroke.
  radius = BRUSH / 2 * scale
  distance = _distance_to_polyline(*expected.shape[:2], points)
  changed = (result != expected).any(-1)
  assert changed.any(), 'nothing was filled'
  assert not (changed & (distance > radius + 2)).any(), 'pixels outside the painted stroke changed'
  # The page's mask is the stroke: all of its core, nothing beyond its rim.
  hole = _decode_data_url(page.evaluate('maskPNG().url'))[..., 0] == 255
  assert hole[distance < radius - 2].all() and not hole[distance > radius + 2].any()
  assert page.is_visible('#result-img') and page.is_visible('#download')
  assert page.is_visible('#edge-panel') is (method == 'edgeconnect')
  page.screenshot(path=str(artifacts_dir / f'demo_{method}.png'), full_page=True)


def test_example_with_its_mask(page, shared_data, tmp_path):
  page.select_option('#example', 'places2/places2_06')  # 600x512, loads its own mask (white = hole)
  _wait_done(page)
  page.wait_for_selector('#stage:not(.empty)')
  assert _run(page, 'ns').startswith('Done')
  result = _download(page, tmp_path)
  root = shared_data / 'edgeconnect_examples' / 'places2'
  image = np.asarray(Image.open(root / 'images' / 'places2_06.png').convert('RGB'))
  hole = np.asarray(Image.open(root / 'masks' / 'places2_06.png').convert('L')) >= 128
  assert result.shape == image.shape
  np.testing.assert_array_equal(result[~hole], image[~hole])
  assert (result[hole] != image[hole]).any()


def test_bad_inputs_on_page(page, shared_data, big_image_file, artifacts_dir, tmp_path):
  text = tmp_path / 'notes.png'
  text.write_text('this is not an image')
  page.set_input_files('#file', str(text))
  assert 'not an image' in _wait_done(page)
  assert page.get_attribute('#message', 'class') == 'error'
  page.set_input_files('#file', str(big_image_file))
  message = _wait_done(page)
  assert '50.0 megapixels' in message and 'at most 16 megapixels' in message
  page.screenshot(path=str(artifacts_dir / 'demo_too_large.png'), full_page=True)
  # A valid photo, but no holes painted.
  _upload(page, shared_data / 'places' / PHOTO)
  assert 'mask is empty' in _run(page, 'telea')
  # Every pixel painted.
  page.evaluate("(() => { const c = document.getElementById('canvas-mask'); const x = c.getContext('2d');"
                " x.fillStyle = '#ff2d55'; x.fillRect(0, 0, c.width, c.height); })()")
  assert 'covers the whole image' in _run(page, 'telea')
  # The server still serves: clear, paint, fill.
  page.click('#clear')
  _paint(page, [(0.4, 0.4), (0.6, 0.6)])
  assert _run(page, 'telea').startswith('Done')


def test_page_without_model_says_how_to_get_one(browser, inprocess_server):
  context = browser.new_context()
  pg = context.new_page()
  pg.goto(inprocess_server + '/')
  pg.wait_for_selector('#model-help:not([hidden])')
  help_text = pg.inner_text('#model-help')
  assert 'python train.py --config configs/quickstart.py --workdir runs/quickstart' in help_text
  assert 'configs/edgeconnect_quickstart.py:stage4' in help_text
  assert pg.eval_on_selector('#method option[value=pconv]', 'o => o.disabled')
  # Before the first fill the Result panel shows its placeholder, not an empty <img> (a broken-image icon).
  assert not pg.is_visible('#result-img') and not pg.is_visible('#edge-img')
  assert pg.is_visible('#result-placeholder') and 'result appears here' in pg.inner_text('#result-placeholder')
  context.close()


def test_unavailable_model_advice_names_that_models_commands():
  """Without an EdgeConnect model the advice is EdgeConnect's four stages (from its task), not PConv's."""
  app = demo.DemoApp()
  methods = {m['id']: m for m in app.info()['methods']}
  for kind in tasks.names():
    commands = tasks.quickstart(kind)
    assert commands, kind
    assert all(c in methods[kind]['note'] for c in commands)
  edgeconnect = methods['edgeconnect']['note']
  assert [f'edgeconnect_quickstart.py:stage{s}' in edgeconnect for s in (1, 2, 3, 4)] == [True] * 4
  assert 'configs/quickstart.py' not in edgeconnect and 'demo --workdir runs/ecq_s4' in edgeconnect
  with pytest.raises(demo.DemoError) as info:
    app.inpaint({'image': 'x', 'mask': 'x', 'method': 'edgeconnect'})
  assert 'edgeconnect_quickstart.py:stage1' in str(info.value) and 'configs/quickstart.py' not in str(info.value)
  assert 'demo --workdir runs/quickstart' in methods['pconv']['note']


def test_brush_geometry_helper():
  # The independent reference used above: distance to a horizontal segment.
  d = _distance_to_polyline(5, 10, np.array([[2.5, 2.5], [7.5, 2.5]]))
  assert d[2, 5] == 0 and math.isclose(d[0, 5], 2.0) and math.isclose(d[2, 0], 2.0)


def test_concurrent_clients_fills_and_bad_requests(inprocess_server):
  """Several clients at once: fills answered 200 with exact known pixels, bad requests 4xx JSON, and the
  server still serving afterwards (one thread per request; the inpainters serialise their own calls)."""
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
  hole = np.zeros((40, 56), bool)
  hole[10:20, 15:35] = True
  fill = json.dumps({'image': _data_url(image), 'mask': _data_url(hole.astype(np.uint8) * 255),
                     'method': 'telea'}).encode()
  empty = json.dumps({'image': _data_url(image), 'mask': _data_url(np.zeros((40, 56), np.uint8)),
                      'method': 'ns'}).encode()
  requests = {
      'fill': (fill, 200),
      'not json': (b'{"image": ', 400),
      'unknown method': (json.dumps({'image': 'x', 'mask': 'x', 'method': 'nope'}).encode(), 400),
      'model missing': (json.dumps({'image': 'x', 'mask': 'x', 'method': 'pconv'}).encode(), 400),
      'empty mask': (empty, 400),
      'not an image': (json.dumps({'image': 'data:image/png;base64,AAAA', 'mask': 'x', 'method': 'telea'}).encode(),
                       400),
  }
  results: queue.Queue = queue.Queue()

  def client(name):
    body, _ = requests[name]
    for _ in range(3):
      results.put((name, *_post(inprocess_server, '/api/inpaint', body)))

  def negative_length():
    conn = http.client.HTTPConnection('127.0.0.1', int(inprocess_server.rsplit(':', 1)[1]), timeout=60)
    conn.putrequest('POST', '/api/inpaint')
    conn.putheader('Content-Length', '-1')
    conn.endheaders()
    resp = conn.getresponse()
    results.put(('negative length', resp.status, json.loads(resp.read())))
    conn.close()

  threads = [threading.Thread(target=client, args=(name,)) for name in requests for _ in range(2)]
  threads.append(threading.Thread(target=negative_length))
  for t in threads:
    t.start()
  for t in threads:
    t.join(timeout=300)
  assert not any(t.is_alive() for t in threads)
  got = [results.get_nowait() for _ in range(results.qsize())]
  assert len(got) == len(requests) * 2 * 3 + 1
  for name, status, body in got:
    want = requests[name][1] if name in requests else 411
    assert status == want, (name, status, body)
    if status == 200:
      out = _decode_data_url(body['image'])
      np.testing.assert_array_equal(out[~hole], image[~hole])
    else:
      assert isinstance(body.get('error'), str) and body['error'], (name, body)
  assert _get(inprocess_server, '/healthz') == (200, b'ok')
