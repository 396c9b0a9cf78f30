"""Tests for jaxinpaint.weights: reading the three formats, the convert CLI, architecture detection,
clear errors, the download helper (local servers and closed local ports only, never the internet), and
the import direction (the building blocks import no model)."""

import functools
import hashlib
import http.server
import os
import pathlib
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest
from safetensors.numpy import save_file

from jaxinpaint import weights
from jaxinpaint.models import inception, vgg
from jaxinpaint.weights import cli


def random_state_dict(specs, seed=0):
  rng = np.random.default_rng(seed)
  return {name: rng.normal(size=weights.torch_shape(spec)).astype(np.float32)
          for name, spec in specs.items()}


def assert_trees_equal(a, b):
  assert sorted(a) == sorted(b)
  for key in a:
    if isinstance(a[key], dict):
      assert_trees_equal(a[key], b[key])
    else:
      np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]))


# ------------------------------------------------------------------------------------ convert / CLI


def test_convert_cli_subprocess_round_trip(tmp_path):
  """timm-style .safetensors (classifier keys, ``model.`` prefix) -> our .npz via the real CLI."""
  state = random_state_dict(vgg.param_specs(depth=16))
  timm = {"model." + k: v for k, v in state.items()}
  timm["model.pre_logits.fc1.weight"] = np.zeros((8, 512, 7, 7), np.float32)
  timm["model.head.fc.weight"] = np.zeros((10, 8), np.float32)
  src = tmp_path / "vgg16.safetensors"
  save_file(timm, str(src))
  dst = tmp_path / "out" / "vgg16.npz"
  result = subprocess.run([sys.executable, "-m", "jaxinpaint.weights", "convert", str(src), str(dst)],
                          capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr
  assert "VGG-16" in result.stdout and "26 tensors" in result.stdout

  with np.load(dst, allow_pickle=False) as data:
    assert str(data["__arch__"]) == "vgg16"
    assert sorted(k for k in data.files if k != "__arch__") == sorted(state)  # No classifier.
  assert_trees_equal(vgg.load_params(dst, depth=16), vgg.load_params(src, depth=16))


def test_convert_from_pth_handles_wrapped_and_prefixed_state_dicts(torch, tmp_path):
  state = random_state_dict(vgg.param_specs(depth=19), seed=1)
  src = tmp_path / "ckpt.pth"
  torch.save({"state_dict": {"module." + k: torch.from_numpy(v) for k, v in state.items()},
              "epoch": 3}, src)
  dst = tmp_path / "vgg19.npz"
  assert cli.convert(src, dst) == "vgg19"
  assert_trees_equal(vgg.load_params(dst, depth=19), vgg.load_params(src, depth=19))
  # The recorded architecture is enforced when loading.
  with pytest.raises(ValueError, match=r"vgg19\.npz.*holds VGG-19 weights, expected VGG-16.*depth=19"):
    vgg.load_params(dst, depth=16)


def test_convert_inception_and_info(tmp_path, capsys):
  state = random_state_dict(inception.param_specs())
  state["fc.weight"] = np.zeros((1008, 2048), np.float32)
  state["Conv2d_1a_3x3.bn.num_batches_tracked"] = np.array(7, np.int64)
  src = tmp_path / "pt_inception.safetensors"
  save_file(state, str(src))
  dst = tmp_path / "inception.npz"
  assert cli.main(["convert", str(src), str(dst)]) == 0
  assert cli.main(["info", str(dst)]) == 0
  assert "pytorch-fid Inception-v3, 470 tensors" in capsys.readouterr().out
  assert_trees_equal(inception.load_variables(dst), inception.load_variables(src))


@pytest.mark.parametrize("command", [[], ["convert"], ["info"], ["download"]])
def test_module_help_exits_zero(command):
  """``python -m jaxinpaint.weights [SUBCOMMAND] --help`` as users run it."""
  result = subprocess.run([sys.executable, "-m", "jaxinpaint.weights", *command, "--help"],
                          capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr
  assert result.stdout.startswith("usage: python -m jaxinpaint.weights " + " ".join(command))


def test_cli_covers_every_detected_architecture():
  assert set(cli.ARCH_SPECS) == set(weights.ARCHS)
  for arch in weights.ARCHS:
    assert weights.detect_arch(random_state_dict(cli.specs_for(arch))) == arch
  with pytest.raises(ValueError, match=r"no parameter table for torchvision's ImageNet Inception-v3"):
    cli.specs_for("inception_torchvision")


def test_building_blocks_import_no_model(modules_loaded_by):
  """Imports point down: the weights package (formats, porting, fetch) loads without any model."""
  loaded = modules_loaded_by("jaxinpaint.weights")
  assert "jaxinpaint.weights.porting" in loaded
  assert [m for m in loaded if not m.startswith("jaxinpaint.weights.")] == ["jaxinpaint.weights"]
  assert "jaxinpaint.weights.cli" not in loaded


def test_cli_help_and_errors(tmp_path, capsys):
  with pytest.raises(SystemExit) as info:
    cli.main(["--help"])
  assert info.value.code == 0
  out = capsys.readouterr().out
  assert "convert" in out and "download" in out
  assert cli.main(["convert", str(tmp_path / "missing.pth"), str(tmp_path / "x.npz")]) == 2
  assert "missing.pth" in capsys.readouterr().err
  with pytest.raises(ValueError, match=r"out\.pth.*must end in \.npz"):
    cli.convert(tmp_path / "missing.pth", tmp_path / "out.pth")


# --------------------------------------------------------------------------------- reading errors


def test_pth_without_torch_says_how_to_proceed(tmp_path, monkeypatch):
  path = tmp_path / "vgg16-397923af.pth"
  path.write_bytes(b"\x80\x02not read")  # starts like a pickle stream, as torch.save's legacy format
  monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError.
  with pytest.raises(ImportError, match=r"needs PyTorch.*pip install torch.*convert "
                     r"vgg16-397923af\.pth vgg16-397923af\.npz"):
    weights.load_state_dict(path)


def test_pickled_module_is_refused(torch, tmp_path):
  path = tmp_path / "module.pth"
  torch.save(torch.nn.Linear(2, 2), path)
  with pytest.raises(ValueError, match=r"module\.pth.*pickled Python object.*state_dict"):
    weights.load_state_dict(path)


def test_unsupported_suffix_and_garbage(tmp_path):
  path = tmp_path / "weights.h5"
  path.write_bytes(b"x")
  with pytest.raises(ValueError, match=r"weights\.h5.*unsupported suffix '\.h5'"):
    weights.load_state_dict(path)
  garbage = tmp_path / "garbage.safetensors"
  garbage.write_bytes(b"\x00" * 64)
  with pytest.raises(ValueError, match=r"garbage\.safetensors.*truncated or corrupt"):
    weights.load_state_dict(garbage)


def test_detect_arch():
  assert weights.detect_arch(random_state_dict(vgg.param_specs(depth=16))) == "vgg16"
  assert weights.detect_arch(random_state_dict(vgg.param_specs(depth=19))) == "vgg19"
  assert weights.detect_arch({"Conv2d_1a_3x3.conv.weight": np.zeros((32, 3, 3, 3))}) == "inception_fid"
  bn = {"features.0.weight": np.zeros((64, 3, 3, 3)), "features.1.running_mean": np.zeros(64)}
  with pytest.raises(ValueError, match=r"f\.pth.*batch normalisation"):
    weights.detect_arch(bn, source="f.pth")
  with pytest.raises(ValueError, match=r"r\.pth.*not a torchvision VGG-16/19.*layer1\.0\.weight"):
    weights.detect_arch({"layer1.0.weight": np.zeros((4, 4, 3, 3))}, source="r.pth")
  eleven = {f"features.{i}.weight": np.zeros((4, 4, 3, 3)) for i in range(8)}
  with pytest.raises(ValueError, match="has 8 convolution weights"):
    weights.detect_arch(eleven)


def test_unexpected_extra_parameters_are_rejected(tmp_path):
  state = random_state_dict(vgg.param_specs(depth=16))
  state["features.29.weight"] = np.zeros((3,), np.float32)  # A 1-D tensor: still 13 conv weights.
  path = tmp_path / "extra.npz"
  np.savez(path, **state)
  with pytest.raises(ValueError, match=r"extra\.npz.*unexpected parameters.*features\.29\.weight"):
    vgg.load_params(path, depth=16)


# --------------------------------------------------------------------------------------- download


def free_local_port():
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]  # Closed when the socket closes: connecting is refused.


@pytest.fixture
def local_server(tmp_path):
  """A throwaway http.server on 127.0.0.1 serving tmp_path/served."""
  root = tmp_path / "served"
  root.mkdir()

  class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
      pass

  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                           functools.partial(Quiet, directory=str(root)))
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  yield root, f"http://127.0.0.1:{server.server_address[1]}"
  server.shutdown()
  server.server_close()


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
  monkeypatch.delenv("JAXINPAINT_CACHE", raising=False)
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
  assert weights.cache_dir() == tmp_path / "xdg" / "jaxinpaint"
  monkeypatch.delenv("XDG_CACHE_HOME")
  assert weights.cache_dir() == pathlib.Path.home() / ".cache" / "jaxinpaint"
  monkeypatch.setenv("JAXINPAINT_CACHE", str(tmp_path / "mine"))
  assert weights.cache_dir() == tmp_path / "mine"


def test_offline_download_fails_fast_with_instructions(tmp_path):
  url = f"http://127.0.0.1:{free_local_port()}/vgg16-397923af.pth"
  with pytest.raises(weights.DownloadError) as info:
    weights.download("vgg16", url=url, directory=tmp_path, timeout=2.0)
  msg = str(info.value)
  assert url in msg and "offline" in msg and "manually" in msg
  assert "curl -L -o vgg16-397923af.pth" in msg
  assert weights.KNOWN_WEIGHTS["vgg16"].sha256 in msg
  assert "python -m jaxinpaint.weights convert vgg16-397923af.pth vgg16-397923af.npz" in msg
  assert list(tmp_path.iterdir()) == []  # No partial file left behind.


def test_download_verifies_sha256_and_caches(local_server, tmp_path):
  root, base = local_server
  payload = os.urandom(3000)
  (root / "w.pth").write_bytes(payload)
  digest = hashlib.sha256(payload).hexdigest()
  cache = tmp_path / "cache"
  seen = []
  path = weights.download("w.pth", url=f"{base}/w.pth", sha256=digest, directory=cache,
                          progress=lambda done, total: seen.append((done, total)))
  assert path == cache / "w.pth" and path.read_bytes() == payload
  assert seen[-1] == (3000, 3000)
  # Cached: a second call does not need the server.
  (root / "w.pth").unlink()
  assert weights.download("w.pth", url=f"{base}/w.pth", sha256=digest, directory=cache) == path
  # Known names use their official file name in the cache.
  vgg16 = weights.KNOWN_WEIGHTS["vgg16"]
  (root / "x").write_bytes(payload)
  got = weights.download("vgg16", url=f"{base}/x", sha256=digest, directory=cache)
  assert got.name == vgg16.filename


def test_download_sha_mismatch_deletes_the_file(tmp_path):
  src = tmp_path / "src.bin"
  src.write_bytes(b"tampered")
  cache = tmp_path / "cache"
  with pytest.raises(ValueError, match=r"SHA-256 mismatch.*expected 0{64}.*deleted"):
    weights.download("vgg19", url=src.as_uri(), sha256="0" * 64, directory=cache)
  assert list(cache.iterdir()) == []
  # The official digest is used by default for known names.
  with pytest.raises(ValueError, match=weights.KNOWN_WEIGHTS["vgg19"].sha256):
    weights.download("vgg19", url=src.as_uri(), directory=cache)


def test_download_http_error_and_unknown_name(local_server, tmp_path):
  _, base = local_server
  with pytest.raises(weights.DownloadError, match="404|Not Found"):
    weights.download("nothing.pth", url=f"{base}/nothing.pth", directory=tmp_path)
  with pytest.raises(ValueError, match="unknown weights name 'vgg11'"):
    weights.download("vgg11", directory=tmp_path)
  assert cli.main(["download", "vgg11", "--dir", str(tmp_path)]) == 2


def test_known_weights_table_is_consistent():
  for name, known in weights.KNOWN_WEIGHTS.items():
    assert known.url.endswith("/" + known.filename)
    assert len(known.sha256) == 64 and int(known.sha256, 16) >= 0
    # torchvision/pytorch-fid put the first 8 hex digits of the SHA-256 in the file name.
    assert known.filename.rsplit("-", 1)[1].startswith(known.sha256[:8]), name
    assert known.arch == name


def test_hanging_name_resolution_times_out(tmp_path, monkeypatch):
  """urlopen's timeout does not cover DNS; a lookup that hangs must still fail within `timeout`."""
  release = threading.Event()

  def stuck_getaddrinfo(*args, **kwargs):
    release.wait(30)
    raise OSError("released")

  monkeypatch.setattr(socket, "getaddrinfo", stuck_getaddrinfo)  # No real lookup ever happens.
  try:
    with pytest.raises(weights.DownloadError, match=r"resolving 'weights\.invalid' timed out.*manually"):
      weights.download("vgg16", url="https://weights.invalid/vgg16-397923af.pth", directory=tmp_path,
                       timeout=0.2)
  finally:
    release.set()


def test_legacy_pth_serialisation_is_read(torch, tmp_path):
  """torchvision's 2017 VGG files predate the zip format; torch.load(weights_only=True) reads them."""
  state = random_state_dict(vgg.param_specs(depth=16), seed=2)
  path = tmp_path / "legacy.pth"
  torch.save({k: torch.from_numpy(v) for k, v in state.items()}, path,
             _use_new_zipfile_serialization=False)
  loaded = weights.load_state_dict(path)
  assert sorted(loaded) == sorted(state)
  np.testing.assert_array_equal(loaded["features.28.weight"], state["features.28.weight"])
