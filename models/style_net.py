"""Feed-forward style networks (Johnson et al. 2016) with conditional instance norm.

One class, :class:`StyleNet`, builds every size from a :class:`StyleNetConfig`;
:data:`ARCHS` names the sizes (``johnson``, ``c32``, ``lite`` and ``tiny``). Each network
holds ``num_styles`` styles as per-style scale and shift of its instance norms
(Dumoulin et al. 2017); a weight vector over the styles picks or blends them.

Images in and out are float tensors NCHW, RGB in [0, 1] (see ``models.common.images``).
Upsampling is nearest resize then convolution (no transposed convolutions, which
leave checkerboard artefacts), and each upsampling step resizes to the exact size
of the matching encoder level, so the output has the input's size for any size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class StyleNetConfig:
    """Shape of a style network: what differs between ``johnson`` and ``lite``."""

    channels: tuple[int, int, int] = (32, 64, 128)
    res_blocks: int = 5
    kernel_in: int = 9
    kernel_out: int = 9
    padding: str = "reflect"  # "reflect" or "zeros"
    depthwise_res: bool = False  # depthwise-separable convolutions in residual blocks

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "StyleNetConfig":
        d = dict(d)
        d["channels"] = tuple(d["channels"])
        return cls(**d)


ARCHS: dict[str, StyleNetConfig] = {
    # Johnson et al. 2016: about 11.8 G multiply-adds per 320x240 frame.
    "johnson": StyleNetConfig(),
    # Real time on 2 CPU cores with onnxruntime; chosen by scripts/bench_style_archs.py.
    # Reflection padding: zero padding is faster per pixel, but a zero-padded network paints a
    # band along the frame's edges that only a mirrored margin of 32-48 px hides, and that margin
    # costs more than the padding (640x480, 2 threads, AVX-512 EPYC: reflect 68 ms on OpenVINO and
    # 97 ms on onnxruntime; zeros with a 48 px margin 89 and 113 ms). Models trained before
    # 2026-11-30 are zero-padded; their checkpoints and manifests record it.
    "lite": StyleNetConfig(
        channels=(16, 32, 64), res_blocks=3, kernel_in=5, kernel_out=3,
        padding="reflect", depthwise_res=True,
    ),
    # 32 channels throughout with plain 3x3 residual blocks (96 k parameters), the shape of a peer's
    # 166 k-parameter network that paints vividly at about lite's cost. On Composition VII it kept
    # the clouds clean where lite hatched them, at 1.4x lite's time (640x480, 2 threads, AVX-512
    # EPYC: 95 against 68 ms on OpenVINO, 120 against 97 ms on onnxruntime).
    "c32": StyleNetConfig(
        channels=(32, 32, 32), res_blocks=3, kernel_in=5, kernel_out=3,
        padding="reflect", depthwise_res=False,
    ),
    # For 640x480 on 2 CPU cores: plain 3x3 residual blocks on 8-16-32 channels were the
    # fastest candidate of scripts/bench_style_archs.py (about 2x lite at 640x480).
    "tiny": StyleNetConfig(
        channels=(8, 16, 32), res_blocks=3, kernel_in=5, kernel_out=3,
        padding="reflect", depthwise_res=False,
    ),
}


def arch_config(name: str) -> StyleNetConfig:
    """The config of a named architecture, with a clear error for unknown names."""
    try:
        return ARCHS[name]
    except KeyError:
        raise ValueError(f"unknown style network architecture {name!r}; choose one of {sorted(ARCHS)}") from None


class ConditionalInstanceNorm2d(nn.Module):
    """Instance norm whose scale and shift are a weighted mix of per-style parameters.

    With one style this is ``nn.InstanceNorm2d(affine=True)``. ``style_weights`` is
    (B, num_styles); one-hot rows pick a style, other rows blend the parameters.
    """

    def __init__(self, channels: int, num_styles: int):
        super().__init__()
        self.num_styles = num_styles
        self.weight = nn.Parameter(torch.ones(num_styles, channels))
        self.bias = nn.Parameter(torch.zeros(num_styles, channels))

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor | None) -> torch.Tensor:
        # Scale and shift go into the instance norm itself rather than a multiply and add
        # after it: the exported graph then has one InstanceNormalization per layer (two fewer
        # passes over each activation, and fewer layout reorders around them), which made the
        # lite network 13% faster in onnxruntime at 640x480 (78.7 -> 69.6 ms, medians).
        if style_weights is None:  # single-style network
            return F.instance_norm(x, weight=self.weight[0].to(x.dtype), bias=self.bias[0].to(x.dtype), eps=1e-5)
        w = style_weights.to(self.weight.dtype)
        scale, shift = (w @ self.weight).to(x.dtype), (w @ self.bias).to(x.dtype)
        b, c, h, wd = x.shape
        # Each sample has its own blend: instance norm is per (sample, channel), so the batch
        # can be folded into the channels and every (sample, channel) gets its own scale.
        y = F.instance_norm(x.reshape(1, b * c, h, wd), weight=scale.reshape(-1), bias=shift.reshape(-1), eps=1e-5)
        return y.reshape(b, c, h, wd)


class _ConvNormAct(nn.Module):
    """Padding, convolution, conditional instance norm and optional ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, padding: str,
                 num_styles: int, act: bool = True, groups: int = 1):
        super().__init__()
        pad_mode = "reflect" if padding == "reflect" else "zeros"
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2,
                              padding_mode=pad_mode, groups=groups)
        self.norm = ConditionalInstanceNorm2d(cout, num_styles)
        self.act = act

    def forward(self, x: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
        x = self.norm(self.conv(x), w)
        return F.relu(x) if self.act else x


class _ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a skip; optionally depthwise-separable for speed."""

    def __init__(self, ch: int, padding: str, num_styles: int, depthwise: bool):
        super().__init__()
        if depthwise:
            self.layers = nn.ModuleList([
                _ConvNormAct(ch, ch, 3, 1, padding, num_styles, act=False, groups=ch),
                _ConvNormAct(ch, ch, 1, 1, padding, num_styles, act=True),
                _ConvNormAct(ch, ch, 3, 1, padding, num_styles, act=False, groups=ch),
                _ConvNormAct(ch, ch, 1, 1, padding, num_styles, act=False),
            ])
        else:
            self.layers = nn.ModuleList([
                _ConvNormAct(ch, ch, 3, 1, padding, num_styles, act=True),
                _ConvNormAct(ch, ch, 3, 1, padding, num_styles, act=False),
            ])

    def forward(self, x: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
        y = x
        for layer in self.layers:
            y = layer(y, w)
        return x + y


class StyleNet(nn.Module):
    """Image transformation network: RGB [0, 1] NCHW in, stylised RGB [0, 1] out.

    ``forward(x, style_weights)`` takes ``style_weights`` of shape (B, num_styles)
    for a network with several styles; a single-style network needs none.
    """

    def __init__(self, config: StyleNetConfig | str = "johnson", num_styles: int = 1):
        super().__init__()
        if isinstance(config, str):
            config = arch_config(config)
        if num_styles < 1:
            raise ValueError("num_styles must be at least 1")
        self.config = config
        self.num_styles = num_styles
        c1, c2, c3 = config.channels
        p, n = config.padding, num_styles
        self.enc = nn.ModuleList([
            _ConvNormAct(3, c1, config.kernel_in, 1, p, n),
            _ConvNormAct(c1, c2, 3, 2, p, n),
            _ConvNormAct(c2, c3, 3, 2, p, n),
        ])
        self.res = nn.ModuleList(
            [_ResidualBlock(c3, p, n, config.depthwise_res) for _ in range(config.res_blocks)])
        self.dec = nn.ModuleList([
            _ConvNormAct(c3, c2, 3, 1, p, n),
            _ConvNormAct(c2, c1, 3, 1, p, n),
        ])
        pad_mode = "reflect" if p == "reflect" else "zeros"
        self.out = nn.Conv2d(c1, 3, config.kernel_out, 1, config.kernel_out // 2, padding_mode=pad_mode)

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor | None = None) -> torch.Tensor:
        if style_weights is None and self.num_styles > 1:
            raise ValueError(f"this network holds {self.num_styles} styles: pass style_weights (B, {self.num_styles})")
        w = style_weights
        h1 = self.enc[0](x, w)
        h2 = self.enc[1](h1, w)
        h = self.enc[2](h2, w)
        for block in self.res:
            h = block(h, w)
        # Resize to the encoder's sizes so that odd input sizes come back unchanged.
        h = self.dec[0](F.interpolate(h, size=h2.shape[-2:], mode="nearest"), w)
        h = self.dec[1](F.interpolate(h, size=h1.shape[-2:], mode="nearest"), w)
        return torch.sigmoid(self.out(h))


def one_hot(style: int, num_styles: int, batch: int = 1, device: torch.device | str | None = None) -> torch.Tensor:
    """Style weights (batch, num_styles) that select one style."""
    w = torch.zeros(batch, num_styles, device=device)
    w[:, style] = 1.0
    return w
