// jaxinpaint demo page: upload/pick an image, paint holes on a canvas, POST image + mask (PNG, white = hole)
// to /api/inpaint and show the result. No external libraries: everything is served by the local server.
'use strict';

const $ = (id) => document.getElementById(id);
const HOLE_COLOUR = '#ff2d55';

const state = {
  imageURL: null,     // normalised RGB PNG from the server (sent back unchanged, so known pixels stay exact)
  width: 0,
  height: 0,
  name: 'image',
  painting: false,
  last: null,
  busy: false,
};
window.jaxinpaintDemo = state;  // handy when debugging from the console

const imageCanvas = $('canvas-image');
const maskCanvas = $('canvas-mask');
const imageCtx = imageCanvas.getContext('2d');
const maskCtx = maskCanvas.getContext('2d', { willReadFrequently: true });

function setMessage(text, kind) {
  const el = $('message');
  el.textContent = text || '';
  el.className = kind || '';
}

async function fetchJSON(url, options) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (err) {
    throw new Error('Could not reach the demo server (is it still running?).');
  }
  let body = null;
  try {
    body = await response.json();
  } catch (err) {
    throw new Error(`The server answered ${response.status} ${response.statusText} without a JSON body.`);
  }
  if (!response.ok || body.error) {
    throw new Error(body.error || `Request failed (${response.status}).`);
  }
  return body;
}

function loadImageElement(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error('The browser could not display this image.'));
    img.src = url;
  });
}

function updateRunButton() {
  const method = $('method').value;
  const option = $('method').selectedOptions[0];
  $('run').disabled = state.busy || !state.imageURL || !method || (option && option.disabled);
}

function resetResult() {
  $('result-img').hidden = true;
  $('result-img').removeAttribute('src');
  $('result-placeholder').hidden = false;
  $('download').hidden = true;
  $('edge-panel').hidden = true;
  $('result-meta').textContent = '';
}

async function setImage(data) {
  const img = await loadImageElement(data.image);
  state.imageURL = data.image;
  state.width = img.naturalWidth;
  state.height = img.naturalHeight;
  state.name = data.name || 'image';
  for (const canvas of [imageCanvas, maskCanvas]) {
    canvas.width = state.width;
    canvas.height = state.height;
  }
  imageCtx.drawImage(img, 0, 0);
  maskCtx.clearRect(0, 0, state.width, state.height);
  if (data.mask) {
    await drawMaskPicture(data.mask);
  }
  $('stage').classList.remove('empty');
  $('input-meta').textContent = `${state.width} × ${state.height} px`;
  resetResult();
  updateRunButton();
}

async function drawMaskPicture(url) {
  // A white-on-black mask picture -> hole colour on the overlay.
  const img = await loadImageElement(url);
  const tmp = document.createElement('canvas');
  tmp.width = state.width;
  tmp.height = state.height;
  const ctx = tmp.getContext('2d');
  ctx.drawImage(img, 0, 0, state.width, state.height);
  const src = ctx.getImageData(0, 0, state.width, state.height);
  const out = maskCtx.createImageData(state.width, state.height);
  for (let i = 0; i < src.data.length; i += 4) {
    if (src.data[i] >= 128) {
      out.data[i] = 255; out.data[i + 1] = 45; out.data[i + 2] = 85; out.data[i + 3] = 255;
    }
  }
  maskCtx.putImageData(out, 0, 0);
}

function maskPNG() {
  // Overlay alpha >= 128 -> hole (white); everything else known (black). Full image resolution.
  const src = maskCtx.getImageData(0, 0, state.width, state.height);
  const tmp = document.createElement('canvas');
  tmp.width = state.width;
  tmp.height = state.height;
  const ctx = tmp.getContext('2d');
  const out = ctx.createImageData(state.width, state.height);
  let holes = 0;
  for (let i = 0; i < src.data.length; i += 4) {
    const v = src.data[i + 3] >= 128 ? 255 : 0;
    holes += v ? 1 : 0;
    out.data[i] = v; out.data[i + 1] = v; out.data[i + 2] = v; out.data[i + 3] = 255;
  }
  ctx.putImageData(out, 0, 0);
  return { url: tmp.toDataURL('image/png'), holes };
}

// ------------------------------------------------------------------------------------------ painting
function canvasPoint(event) {
  const rect = maskCanvas.getBoundingClientRect();
  const scale = maskCanvas.width / rect.width;
  return { x: (event.clientX - rect.left) * scale, y: (event.clientY - rect.top) * scale, scale };
}

function stroke(from, to) {
  const size = Number($('brush-size').value) * to.scale;  // brush size is in screen pixels
  maskCtx.save();
  maskCtx.globalCompositeOperation = $('eraser').checked ? 'destination-out' : 'source-over';
  maskCtx.strokeStyle = HOLE_COLOUR;
  maskCtx.fillStyle = HOLE_COLOUR;
  maskCtx.lineWidth = size;
  maskCtx.lineCap = 'round';
  maskCtx.lineJoin = 'round';
  maskCtx.beginPath();
  if (from.x === to.x && from.y === to.y) {
    maskCtx.arc(to.x, to.y, size / 2, 0, 2 * Math.PI);
    maskCtx.fill();
  } else {
    maskCtx.moveTo(from.x, from.y);
    maskCtx.lineTo(to.x, to.y);
    maskCtx.stroke();
  }
  maskCtx.restore();
}

maskCanvas.addEventListener('pointerdown', (event) => {
  if (!state.imageURL) return;
  event.preventDefault();
  maskCanvas.setPointerCapture(event.pointerId);
  state.painting = true;
  state.last = canvasPoint(event);
  stroke(state.last, state.last);
});
maskCanvas.addEventListener('pointermove', (event) => {
  if (!state.painting) return;
  const point = canvasPoint(event);
  stroke(state.last, point);
  state.last = point;
});
for (const type of ['pointerup', 'pointercancel']) {
  maskCanvas.addEventListener(type, () => { state.painting = false; state.last = null; });
}

$('brush-size').addEventListener('input', () => { $('brush-size-value').textContent = $('brush-size').value; });
$('clear').addEventListener('click', () => { maskCtx.clearRect(0, 0, maskCanvas.width, maskCanvas.height); });
$('method').addEventListener('change', updateRunButton);

// ------------------------------------------------------------------------------------------ inputs
$('file').addEventListener('change', async () => {
  const file = $('file').files[0];
  if (!file) return;
  setMessage(`Reading ${file.name}…`, 'busy');
  try {
    const data = await fetchJSON('/api/upload', { method: 'POST', body: file,
      headers: { 'Content-Type': 'application/octet-stream' } });
    data.name = file.name.replace(/\.[^.]*$/, '');
    await setImage(data);
    setMessage('Paint over the part of the image to fill, then press “Fill holes”.');
  } catch (err) {
    setMessage(err.message, 'error');
  } finally {
    $('file').value = '';
  }
});

$('example').addEventListener('change', async () => {
  const id = $('example').value;
  if (!id) return;
  setMessage('Loading example…', 'busy');
  try {
    const data = await fetchJSON('/api/example?id=' + encodeURIComponent(id));
    await setImage(data);
    setMessage(data.mask ? 'Example loaded with its mask; paint more or press “Fill holes”.'
                         : 'Paint over the part of the image to fill, then press “Fill holes”.');
  } catch (err) {
    setMessage(err.message, 'error');
  }
});

// ------------------------------------------------------------------------------------------ run
$('run').addEventListener('click', async () => {
  if (!state.imageURL || state.busy) return;
  const method = $('method').value;
  const label = $('method').selectedOptions[0].textContent;
  const mask = maskPNG();
  state.busy = true;
  updateRunButton();
  setMessage(`Running ${label}… (the first run of a model compiles it, which takes a few seconds)`, 'busy');
  try {
    const data = await fetchJSON('/api/inpaint', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ image: state.imageURL, mask: mask.url, method }),
    });
    $('result-img').src = data.image;
    $('result-img').hidden = false;
    $('result-placeholder').hidden = true;
    const link = $('download');
    link.href = data.image;
    link.download = `${state.name}_${data.method}.png`;
    link.hidden = false;
    if (data.edge) {
      $('edge-img').src = data.edge;
      $('edge-panel').hidden = false;
    } else {
      $('edge-panel').hidden = true;
    }
    const pct = (100 * data.hole_fraction).toFixed(1);
    $('result-meta').textContent = `${data.label} · ${data.width} × ${data.height} · ${pct}% filled · ${data.seconds.toFixed(2)} s`;
    setMessage(`Done: ${data.label} filled ${pct}% of the image.`, 'done');
  } catch (err) {
    setMessage(err.message, 'error');
  } finally {
    state.busy = false;
    updateRunButton();
  }
});

// ------------------------------------------------------------------------------------------ start
async function init() {
  let info;
  try {
    info = await fetchJSON('/api/info');
  } catch (err) {
    setMessage(err.message, 'error');
    return;
  }
  const methodSelect = $('method');
  for (const m of info.methods) {
    const option = document.createElement('option');
    option.value = m.id;
    option.textContent = m.label + (m.available ? '' : ' — unavailable');
    option.disabled = !m.available;
    if (m.note) option.title = m.note;
    methodSelect.appendChild(option);
  }
  if (info.default_method) methodSelect.value = info.default_method;
  const exampleSelect = $('example');
  for (const e of info.examples) {
    const option = document.createElement('option');
    option.value = e.id;
    option.textContent = e.label;
    exampleSelect.appendChild(option);
  }
  if (info.model_help) {
    const help = $('model-help');
    help.hidden = false;
    help.textContent = 'No trained model is loaded, so only the classical methods (Telea, Navier-Stokes, PatchMatch) '
      + 'are available. Small models train on CPU in minutes:';
    const list = document.createElement('ul');
    for (const t of info.training) {  // one entry per model kind, commands from its task
      const item = document.createElement('li');
      item.append(`${t.label}: `);
      t.commands.forEach((command, i) => {
        if (i) item.append(' then ');
        const code = document.createElement('code');
        code.textContent = command;
        item.append(code);
      });
      item.append(', then restart the demo with ');
      const demo = document.createElement('code');
      demo.textContent = t.demo;
      item.append(demo);
      list.appendChild(item);
    }
    help.appendChild(list);
  }
  if (info.problems && info.problems.length) {
    const box = $('problems');
    box.hidden = false;
    box.textContent = info.problems.join(' ');
  }
  $('limit').textContent = String(Math.round(info.max_pixels / 1e6));
  $('model-limit').textContent = String(info.max_model_pixels / 1e6);
  updateRunButton();
}
init();
