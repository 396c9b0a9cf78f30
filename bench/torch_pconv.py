"""PyTorch PConv U-Net with the reference semantics, for the side-by-side benchmark (not used by the package).

The partial convolution is NVIDIA's `PartialConv2d(multi_channel=True, return_mask=True)`
(https://github.com/NVIDIA/partialconv/blob/master/models/partialconv2d.py): the mask branch is a full
convolution of the multi-channel mask with a ones kernel of shape (C_out, C_in, kh, kw) under
`torch.no_grad()`, `ratio = slide_winsize / (sum + 1e-8) * clamp(sum, 0, 1)`, output
`(raw - b) * ratio + b`, times the updated mask. The U-Net follows the widely used reproduction
(naoto0804/pytorch-inpainting-with-partial-conv, `net.py` `PConvUNet`): nearest x2 upsampling of features
and (multi-channel) masks, channel concatenation with the encoder's features and masks, BatchNorm + ReLU
(encoder) / LeakyReLU(0.2) (decoder), and the same layer table and bias placement as
`jaxinpaint.models.PConvUNet` (bias on enc1 and the last decoder layer only), so both compute the same
function.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class PartialConv2d(nn.Conv2d):
  """NVIDIA's PartialConv2d with multi_channel=True, return_mask=True (mask recomputed every call)."""

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self.register_buffer(
        "weight_mask_updater",
        torch.ones(self.out_channels, self.in_channels, self.kernel_size[0], self.kernel_size[1]),
        persistent=False)
    self.slide_winsize = float(self.in_channels * self.kernel_size[0] * self.kernel_size[1])

  def forward(self, x, mask):
    with torch.no_grad():
      update_mask = F.conv2d(mask, self.weight_mask_updater, bias=None, stride=self.stride,
                             padding=self.padding, dilation=self.dilation, groups=1)
      mask_ratio = self.slide_winsize / (update_mask + 1e-8)
      update_mask = torch.clamp(update_mask, 0, 1)
      mask_ratio = torch.mul(mask_ratio, update_mask)
    raw_out = super().forward(torch.mul(x, mask))
    if self.bias is not None:
      bias_view = self.bias.view(1, self.out_channels, 1, 1)
      output = torch.mul(raw_out - bias_view, mask_ratio) + bias_view
      output = torch.mul(output, update_mask)
    else:
      output = torch.mul(raw_out, mask_ratio)
    return output, update_mask


class PCBActiv(nn.Module):
  def __init__(self, in_ch, out_ch, *, kernel_size, stride, bn, activ, bias):
    super().__init__()
    self.conv = PartialConv2d(in_ch, out_ch, kernel_size, stride, kernel_size // 2, bias=bias)
    self.bn = nn.BatchNorm2d(out_ch) if bn else None
    self.activ = activ

  def forward(self, x, mask):
    h, h_mask = self.conv(x, mask)
    if self.bn is not None:
      h = self.bn(h)
    if self.activ == "relu":
      h = F.relu(h)
    elif self.activ == "leaky":
      h = F.leaky_relu(h, negative_slope=0.2)
    return h, h_mask


class PConvUNet(nn.Module):
  """7-level (256x256) or L-level PConv U-Net; forward(image NCHW, mask NCHW with 3 channels)."""

  def __init__(self, layer_size: int = 7, input_channels: int = 3,
               features=(64, 128, 256, 512, 512, 512, 512, 512), kernel_sizes=(7, 5, 5, 3, 3, 3, 3, 3)):
    super().__init__()
    self.layer_size = layer_size
    chans = [input_channels] + list(features[:layer_size])
    self.enc = nn.ModuleList([
        PCBActiv(chans[i], chans[i + 1], kernel_size=kernel_sizes[i], stride=2, bn=i > 0, activ="relu",
                 bias=i == 0) for i in range(layer_size)])
    # dec[j] (j = 0 first) takes chans[L - j] upsampled + chans[L - j - 1] skip -> chans[L - j - 1].
    self.dec = nn.ModuleList([
        PCBActiv(chans[layer_size - j] + chans[layer_size - j - 1], chans[layer_size - j - 1], kernel_size=3,
                 stride=1, bn=j < layer_size - 1, activ="leaky" if j < layer_size - 1 else None,
                 bias=j == layer_size - 1) for j in range(layer_size)])

  def forward(self, image, mask):
    hs, ms = [image], [mask]
    h, m = image, mask
    for layer in self.enc:
      h, m = layer(h, m)
      hs.append(h)
      ms.append(m)
    for j, layer in enumerate(self.dec):
      skip_h, skip_m = hs[self.layer_size - j - 1], ms[self.layer_size - j - 1]
      h = F.interpolate(h, scale_factor=2, mode="nearest")
      m = F.interpolate(m, scale_factor=2, mode="nearest")
      h = torch.cat([h, skip_h], dim=1)
      m = torch.cat([m, skip_m], dim=1)
      h, m = layer(h, m)
    return h

