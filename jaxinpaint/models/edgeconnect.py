"""EdgeConnect networks (Nazeri et al., "EdgeConnect: Generative Image Inpainting with Adversarial Edge
Learning", ICCVW 2019), NHWC Flax linen.

Implements the layers of the authors' released code (knazeri/edge-connect, `src/networks.py`):

* `EdgeGenerator` (G1): input concat(gray with holes filled by 1, edges with holes zeroed, hole mask
  with 1 = hole) -> 7x7 conv 64, two 4x4 stride-2 convs (128, 256), 8 dilated residual blocks, two 4x4
  stride-2 transposed convs (128, 64), 7x7 conv to 1 channel, sigmoid. Spectral norm on every conv but the
  last (the residual-block convs then have no bias, as in the authors' code).
* `InpaintGenerator` (G2): input concat(RGB with holes filled by 1, edge map); same layout without
  spectral norm, 3 output channels, (tanh(x) + 1) / 2.
* `PatchDiscriminator`: 70x70 PatchGAN, five 4x4 convs (64, 128, 256, 512, 1; strides 2, 2, 2, 1, 1; zero
  padding 1; no bias), spectral norm, LeakyReLU(0.2); returns the logits and the five intermediate
  activations used by the feature-matching loss (the last one is the logits themselves).

Reference behaviour reproduced exactly (a torch parity test ports weights both ways):
  * weights N(0, 0.02), biases 0 (`BaseNetwork.init_weights('normal', 0.02)`);
  * `nn.InstanceNorm2d(C, track_running_stats=False)`: no affine parameters, biased variance, eps 1e-5,
    statistics of the current sample in train and eval alike;
  * `nn.ReflectionPad2d` before the 7x7 convs and the residual-block convs; zero padding 1 in the 4x4 convs;
  * `torch.nn.utils.spectral_norm` (one power iteration per *training* forward; `u`, `v` kept outside the
    parameters and not differentiated through; eps 1e-12 in `x / max(||x||, eps)`; in eval mode the
    stored `u`, `v` give sigma = u . W v without iterating). W is the kernel as a (C_out, C_in*kh*kw)
    matrix — also for the transposed convs, where torch uses `dim=1` (the output channels).
    We do not use `flax.linen.SpectralNorm`: it iterates in eval too, stores sigma rather than v, and
    normalises as x * rsqrt(|x|^2 + eps), so it would not load or reproduce the authors' checkpoints.
  * `output_align`: if H or W is not a multiple of 4 the output is replicate-padded at the bottom/right.

Spectral-norm vectors live in the `'spectral'` collection (`variables['spectral']`); pass
`mutable=['spectral']` when calling with `train=True` on a spectrally normalised network.

`convert_torch_state_dict` turns an authors' `state_dict` (`EdgeModel_gen.pth['generator']` etc.) into our
variables.
"""

from __future__ import annotations

import functools
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxinpaint import convs, weights

SPECTRAL = "spectral"
_SN_EPS = 1e-12
_IN_EPS = 1e-5
_INIT_STD = 0.02

Array = jax.Array


# --------------------------------------------------------------------------------------------------------
# Convolution primitives (the single swappable call sites).


def conv2d(x: Array, kernel: Array, *, strides: int = 1, padding: int = 0, dilation: int = 1) -> Array:
  """Cross-correlation with zero padding, == torch `F.conv2d` on the HWIO port of the weight."""
  return convs.conv2d(x, kernel, strides=strides, padding=padding, dilation=dilation)


def conv_transpose2d(x: Array, kernel: Array, *, strides: int = 2, padding: int = 1) -> Array:
  """== torch `F.conv_transpose2d` with kernel (kh, kw, in, out) = torch weight.permute(2, 3, 0, 1)."""
  return convs.conv_transpose2d(x, kernel, strides=strides, padding=padding)


# --------------------------------------------------------------------------------------------------------
# Small pure helpers.


def instance_norm(x: Array, *, eps: float = _IN_EPS) -> Array:
  """`torch.nn.InstanceNorm2d(affine=False, track_running_stats=False)` on NHWC: per sample and channel,
  (x - mean) / sqrt(biased var + eps) over H and W. Statistics and normalisation in float32 (as torch's
  autocast runs instance norm), returned in x's dtype."""
  x32 = x.astype(jnp.float32)
  mean = jnp.mean(x32, axis=(1, 2), keepdims=True)
  var = jnp.mean(jnp.square(x32 - mean), axis=(1, 2), keepdims=True)
  return ((x32 - mean) * jax.lax.rsqrt(var + eps)).astype(x.dtype)


def reflect_pad(x: Array, pad: int) -> Array:
  """`torch.nn.ReflectionPad2d(pad)` on NHWC."""
  return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


def _normalize(v: Array, eps: float = _SN_EPS) -> Array:
  # torch.nn.functional.normalize: v / max(||v||, eps).
  return v / jnp.maximum(jnp.linalg.norm(v), eps)


def _output_align(inputs: Array, outputs: Array) -> Array:
  # The authors' output_align: replicate-pad bottom/right when H or W is not a multiple of 4.
  dh = inputs.shape[1] - outputs.shape[1]
  dw = inputs.shape[2] - outputs.shape[2]
  if dh or dw:
    outputs = jnp.pad(outputs, ((0, 0), (0, dh), (0, dw), (0, 0)), mode="edge")
  return outputs


# --------------------------------------------------------------------------------------------------------
# Layers.


class Conv(nn.Module):
  """A 2-D convolution (or torch-style transposed convolution) with optional spectral normalisation.

  Params: `kernel` (kh, kw, C_in, C_out) ~ N(0, 0.02), `bias` (C_out,) = 0 if `use_bias`, float32. With
  `spectral_norm`, variables `spectral/u` (C_out,) and `spectral/v` (C_in*kh*kw,), exactly
  `weight_u`/`weight_v` of `torch.nn.utils.spectral_norm`, and the kernel used is kernel / sigma (power
  iteration and sigma in float32). The convolution runs in x's dtype (the kernel is cast to it).

  Attributes:
    features: output channels.
    kernel_size: square kernel size.
    strides: stride.
    padding: zero padding on each side (the transposed conv's torch `padding`).
    dilation: kernel dilation (plain convs only).
    use_bias: add a bias.
    spectral_norm: apply torch's spectral normalisation (one power iteration per training call).
    transpose: torch `ConvTranspose2d` semantics instead of `Conv2d`.
  """
  features: int
  kernel_size: int
  strides: int = 1
  padding: int = 0
  dilation: int = 1
  use_bias: bool = True
  spectral_norm: bool = False
  transpose: bool = False

  @nn.compact
  def __call__(self, x: Array, *, train: bool) -> Array:
    k = self.kernel_size
    cin = x.shape[-1]
    kernel = self.param("kernel", nn.initializers.normal(_INIT_STD), (k, k, cin, self.features), jnp.float32)
    if self.spectral_norm:
      kernel = self._spectral_normalize(kernel, train)
    if self.transpose:
      y = conv_transpose2d(x, kernel.astype(x.dtype), strides=self.strides, padding=self.padding)
    else:
      y = conv2d(x, kernel.astype(x.dtype), strides=self.strides, padding=self.padding, dilation=self.dilation)
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32).astype(y.dtype)
    return y

  def _spectral_normalize(self, kernel: Array, train: bool) -> Array:
    cout = kernel.shape[-1]
    # (C_out, C_in*kh*kw) in torch's flattening order, so u/v port one-to-one.
    w = jnp.transpose(kernel, (3, 2, 0, 1)).reshape(cout, -1)
    u_var = self.variable(SPECTRAL, "u", lambda: _normalize(jax.random.normal(self.make_rng("params"), (cout,))))
    v_var = self.variable(SPECTRAL, "v", lambda: _normalize(jax.random.normal(self.make_rng("params"), (w.shape[1],))))
    u, v = u_var.value, v_var.value
    if train and not self.is_initializing():
      # torch: one power iteration under no_grad, then sigma = u . W v with W differentiated.
      w_sg = jax.lax.stop_gradient(w)
      v = _normalize(w_sg.T @ u)
      u = _normalize(w_sg @ v)
      u_var.value, v_var.value = u, v
    sigma = jnp.dot(u, w @ v)
    return kernel / sigma


class ResnetBlock(nn.Module):
  """The authors' `ResnetBlock(dim, dilation=2)`: reflect-pad d, 3x3 conv dilation d, IN, ReLU, reflect-pad
  1, 3x3 conv, IN, identity add, no activation after the add (bias only without spectral norm)."""
  features: int
  dilation: int = 2
  spectral_norm: bool = False

  @nn.compact
  def __call__(self, x: Array, *, train: bool) -> Array:
    y = reflect_pad(x, self.dilation)
    y = Conv(self.features, 3, dilation=self.dilation, use_bias=not self.spectral_norm,
             spectral_norm=self.spectral_norm, name="conv1")(y, train=train)
    y = nn.relu(instance_norm(y))
    y = reflect_pad(y, 1)
    y = Conv(self.features, 3, use_bias=not self.spectral_norm, spectral_norm=self.spectral_norm,
             name="conv2")(y, train=train)
    return x + instance_norm(y)


class _Generator(nn.Module):
  """Shared encoder / dilated residual middle / decoder of G1 and G2 (submodules enc1-3, res1-N, dec1-3)."""
  out_channels: int
  features: int = 64
  residual_blocks: int = 8
  spectral_norm: bool = False

  @nn.compact
  def __call__(self, x: Array, *, train: bool) -> Array:
    if x.ndim != 4:
      raise ValueError(f"x: expected an NHWC batch (4 dims), got shape {x.shape}")
    if min(x.shape[1:3]) < 4:
      raise ValueError(f"x: spatial size must be at least 4x4 (reflection pad 3), got {x.shape[1:3]}")
    f, sn = self.features, self.spectral_norm
    inputs = x
    x = reflect_pad(x, 3)
    x = nn.relu(instance_norm(Conv(f, 7, spectral_norm=sn, name="enc1")(x, train=train)))
    x = nn.relu(instance_norm(Conv(2 * f, 4, strides=2, padding=1, spectral_norm=sn, name="enc2")(x, train=train)))
    x = nn.relu(instance_norm(Conv(4 * f, 4, strides=2, padding=1, spectral_norm=sn, name="enc3")(x, train=train)))
    for i in range(self.residual_blocks):
      x = ResnetBlock(4 * f, dilation=2, spectral_norm=sn, name=f"res{i + 1}")(x, train=train)
    x = Conv(2 * f, 4, strides=2, padding=1, spectral_norm=sn, transpose=True, name="dec1")(x, train=train)
    x = nn.relu(instance_norm(x))
    x = Conv(f, 4, strides=2, padding=1, spectral_norm=sn, transpose=True, name="dec2")(x, train=train)
    x = nn.relu(instance_norm(x))
    x = Conv(self.out_channels, 7, name="dec3")(reflect_pad(x, 3), train=train)  # never spectral-normed
    return _output_align(inputs, x)


class EdgeGenerator(nn.Module):
  """EdgeConnect's edge generator G1 (paper Sec. 3.1; `EdgeGenerator` in src/networks.py).

  Args (call):
    x: (N, H, W, 3) = concat(gray * mask + (1 - mask), edge * mask, 1 - mask) with mask 1 = valid
      (`edge_generator_inputs` builds it).
    train: one spectral-norm power iteration (needs `mutable=['spectral']`); eval uses the stored u, v.

  Returns:
    (N, H, W, 1) edge probabilities in [0, 1] (sigmoid).

  Attributes:
    features: width of the first conv (64 in the paper; smaller for CPU tests).
    residual_blocks: number of dilated residual blocks (8).
    spectral_norm: spectral norm on every conv but the last (True in the paper).
    dtype: computation dtype of the convolutions and activations (e.g. `jnp.bfloat16`); parameters,
      spectral-norm vectors, instance-norm statistics and the returned output are float32.
  """
  features: int = 64
  residual_blocks: int = 8
  spectral_norm: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array, *, train: bool = False) -> Array:
    logits = _Generator(1, self.features, self.residual_blocks, self.spectral_norm, name="net")(
        jnp.asarray(x, self.dtype), train=train)
    return nn.sigmoid(logits.astype(jnp.float32))


class InpaintGenerator(nn.Module):
  """EdgeConnect's image completion generator G2 (paper Sec. 3.2; `InpaintGenerator` in src/networks.py).

  Args (call):
    x: (N, H, W, 4) = concat(image * mask + (1 - mask), edge) with mask 1 = valid
      (`inpaint_generator_inputs` builds it).
    train: unused by the paper's G2 (no spectral norm) but kept for a uniform interface.

  Returns:
    (N, H, W, 3) image in [0, 1]: (tanh(x) + 1) / 2, float32.

  Attributes:
    features, residual_blocks, spectral_norm: as `EdgeGenerator` (no spectral norm in the paper's G2).
    dtype: computation dtype of the convolutions and activations (e.g. `jnp.bfloat16`); parameters,
      instance-norm statistics and the returned output are float32.
  """
  features: int = 64
  residual_blocks: int = 8
  spectral_norm: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array, *, train: bool = False) -> Array:
    y = _Generator(3, self.features, self.residual_blocks, self.spectral_norm, name="net")(
        jnp.asarray(x, self.dtype), train=train)
    return (jnp.tanh(y.astype(jnp.float32)) + 1.0) / 2.0


class PatchDiscriminator(nn.Module):
  """EdgeConnect's 70x70 PatchGAN discriminator (`Discriminator` in src/networks.py).

  Five 4x4 convs (f, 2f, 4f, 8f, 1; strides 2, 2, 2, 1, 1; zero padding 1; no bias under spectral norm),
  LeakyReLU(0.2) after the first four. The sigmoid of the reference is left to the loss
  (`jaxinpaint.losses.adversarial` takes logits).

  Returns:
    (logits (N, h, w, 1), [conv1, conv2, conv3, conv4, conv5]) — the activations the authors' feature
    matching loss compares (conv5 is the logits), all float32.

  Attributes:
    features: width of the first conv (64).
    spectral_norm: spectral norm on every conv (True in the paper).
    dtype: computation dtype of the convolutions and activations (e.g. `jnp.bfloat16`); parameters and
      spectral-norm vectors are float32.
  """
  features: int = 64
  spectral_norm: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array, *, train: bool = False) -> tuple[Array, list[Array]]:
    if x.ndim != 4:
      raise ValueError(f"x: expected an NHWC batch (4 dims), got shape {x.shape}")
    f, sn = self.features, self.spectral_norm
    x = jnp.asarray(x, self.dtype)
    feats = []
    for i, (c, s) in enumerate(zip((f, 2 * f, 4 * f, 8 * f, 1), (2, 2, 2, 1, 1))):
      x = Conv(c, 4, strides=s, padding=1, use_bias=not sn, spectral_norm=sn, name=f"conv{i + 1}")(x, train=train)
      if i < 4:
        x = nn.leaky_relu(x, 0.2)
      feats.append(x.astype(jnp.float32))
    return feats[-1], feats


# --------------------------------------------------------------------------------------------------------
# Input assembly (paper Eq. 1 and 5 in our mask convention).


def edge_generator_inputs(gray: Array, edge: Array, mask: Array) -> Array:
  """G1 input: concat(gray with holes = 1, edges with holes = 0, hole indicator), mask 1 = valid."""
  hole = 1.0 - mask
  return jnp.concatenate([gray * mask + hole, edge * mask, hole], axis=-1)


def inpaint_generator_inputs(image: Array, edge: Array, mask: Array) -> Array:
  """G2 input: concat(image with holes = 1, edge map), mask 1 = valid."""
  return jnp.concatenate([image * mask + (1.0 - mask), edge], axis=-1)


# --------------------------------------------------------------------------------------------------------
# Porting the authors' checkpoints: a parameter table per configuration, ported by the shared porter
# (`jaxinpaint.weights.port_state_dict`: shapes, dtypes and finiteness checked, extra keys refused).

_KINDS = {"edge": "EdgeConnect's edge generator (G1)", "inpaint": "EdgeConnect's inpaint generator (G2)",
          "discriminator": "EdgeConnect's discriminator"}


def _torch_layout(kind: str, residual_blocks: int = 8) -> dict[tuple[str, ...], tuple[str, bool]]:
  """Our module path -> (torch state_dict prefix, is_transposed); the first entry is the input layer."""
  if kind == "discriminator":
    return {(f"conv{i}",): (f"conv{i}.0", False) for i in range(1, 6)}
  if kind not in _KINDS:
    raise ValueError(f"kind: expected 'edge', 'inpaint' or 'discriminator', got {kind!r}")
  layout = {("net", "enc1"): ("encoder.1", False), ("net", "enc2"): ("encoder.4", False),
            ("net", "enc3"): ("encoder.7", False), ("net", "dec1"): ("decoder.0", True),
            ("net", "dec2"): ("decoder.3", True), ("net", "dec3"): ("decoder.7", False)}
  for i in range(residual_blocks):
    layout[("net", f"res{i + 1}", "conv1")] = (f"middle.{i}.conv_block.1", False)
    layout[("net", f"res{i + 1}", "conv2")] = (f"middle.{i}.conv_block.5", False)
  return layout


@functools.lru_cache(maxsize=None)
def param_specs(*, kind: str, in_channels: int, features: int = 64, residual_blocks: int = 8,
                spectral_norm: bool) -> dict[str, weights.ParamSpec]:
  """``{authors' torch name: ParamSpec}`` for every variable of one network configuration.

  Built from the Flax variable tree (shapes via `jax.eval_shape`, nothing is computed), so it always
  matches the modules: ``params/.../kernel`` <- ``{prefix}.weight`` (``weight_orig`` where spectrally
  normalised; transposed convs keep torch's (C_in, C_out, kh, kw)), ``params/.../bias`` <- ``.bias``,
  ``spectral/.../u`` <- ``.weight_u``, ``spectral/.../v`` <- ``.weight_v``.

  Args:
    kind: 'edge' (G1), 'inpaint' (G2) or 'discriminator' (D1 or D2).
    in_channels: input channels (3 for G1, 4 for G2, 2 for D1, 3 for D2 in the paper).
    features, residual_blocks, spectral_norm: the module attributes.
  """
  layout = _torch_layout(kind, residual_blocks)
  if kind == "discriminator":
    model = PatchDiscriminator(features=features, spectral_norm=spectral_norm)
  else:
    cls = EdgeGenerator if kind == "edge" else InpaintGenerator
    model = cls(features=features, residual_blocks=residual_blocks, spectral_norm=spectral_norm)
  shapes = jax.eval_shape(functools.partial(model.init, train=False), jax.random.key(0),
                          jax.ShapeDtypeStruct((1, 32, 32, in_channels), jnp.float32))
  leaves = [(tuple(k.key for k in path), leaf) for path, leaf in jax.tree_util.tree_flatten_with_path(shapes)[0]]
  normalised = {keys[1:-1] for keys, _ in leaves if keys[0] == SPECTRAL}
  specs = {}
  for keys, leaf in leaves:
    collection, module, name = keys[0], keys[1:-1], keys[-1]
    prefix, transposed = layout[module]
    if collection == SPECTRAL:
      torch_name = f"{prefix}.weight_{name}"
    elif name == "kernel":
      torch_name = f"{prefix}.weight_orig" if module in normalised else f"{prefix}.weight"
    else:
      torch_name = f"{prefix}.{name}"
    specs[torch_name] = weights.ParamSpec(keys, tuple(leaf.shape), transposed=transposed and name == "kernel")
  return specs


def _fill_spectral_v(sd: dict[str, np.ndarray], layout: Mapping[tuple[str, ...], tuple[str, bool]]) -> None:
  """Adds `weight_v` = normalize(W^T u) where a spectrally normalised layer lacks it (torch < 1.1)."""
  for prefix, transposed in layout.values():
    w, u = sd.get(f"{prefix}.weight_orig"), sd.get(f"{prefix}.weight_u")
    if w is None or u is None or f"{prefix}.weight_v" in sd or w.ndim != 4 or u.ndim != 1:
      continue
    mat = np.transpose(w, (1, 0, 2, 3)) if transposed else w  # torch's dim: C_out first
    if mat.shape[0] == u.shape[0]:  # otherwise the porter reports u's shape
      v = mat.reshape(u.shape[0], -1).T @ u
      sd[f"{prefix}.weight_v"] = v / max(np.linalg.norm(v), _SN_EPS)


def convert_torch_state_dict(state_dict: Mapping[str, Any], *, kind: str, residual_blocks: int = 8) -> dict:
  """Convert an authors' `state_dict` (tensors or arrays) into `{'params': ..., 'spectral': ...}`.

  The configuration is read from the state_dict (spectral norm: `weight_orig` in the input layer; width
  and input channels: its shape) and every tensor is checked against `param_specs` of that configuration.

  Args:
    state_dict: e.g. `torch.load('EdgeModel_gen.pth')['generator']`; a `module.` prefix (DataParallel) is
      stripped. Spectrally normalised layers carry `weight_orig`, `weight_u`, `weight_v`; when `weight_v`
      is missing (checkpoints from torch < 1.1) it is recomputed as normalize(W^T u).
    kind: 'edge' (G1), 'inpaint' (G2) or 'discriminator' (D1 or D2).
    residual_blocks: number of residual blocks of the generator.

  Returns:
    Variables for `EdgeGenerator` / `InpaintGenerator` / `PatchDiscriminator` (new float32 arrays); the
    'spectral' entry is present only when the checkpoint is spectrally normalised.

  Raises:
    ValueError: unknown `kind`, no input layer, or a missing, mis-shaped, non-finite or unexpected tensor.
  """
  layout = _torch_layout(kind, residual_blocks)
  sd = weights.as_numpy_state_dict(state_dict)
  first = next(iter(layout.values()))[0]
  spectral_norm = f"{first}.weight_orig" in sd
  w = sd.get(f"{first}.weight_orig" if spectral_norm else f"{first}.weight")
  if w is None or w.ndim != 4:
    raise ValueError(f"state_dict: no 4-D '{first}.weight' or '{first}.weight_orig' for a {kind!r} network "
                     f"(keys start with {sorted(sd)[:4]})")
  _fill_spectral_v(sd, layout)
  specs = param_specs(kind=kind, in_channels=int(w.shape[1]), features=int(w.shape[0]),
                      residual_blocks=residual_blocks, spectral_norm=spectral_norm)
  return weights.port_state_dict(sd, specs, source=None, arch=_KINDS[kind], check=False)


def count_params(params: Any) -> int:
  """Number of trainable scalars in a params pytree (spectral-norm vectors are not params)."""
  return int(sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(params)))
