"""Image synthesis by optimising pixels: texture synthesis and Gatys style transfer.

- ``texture_synthesis``: match the Gram matrices of a texture from noise (Gatys et al. 2015).
- ``style_transfer``: keep a content image's features and take on the Grams of one or more
  style images (Gatys et al. 2016), optionally on luminance only and coarse to fine
  (Gatys et al. 2017, "Controlling perceptual factors in neural style transfer").

Speed: the targets (style Grams, content features) are computed once per scale; each
loss evaluation is one ``features()`` call that stops at the deepest layer needed, on a copy of
the network with its BatchNorms folded into the convolutions and each convolution fused with its
activation (:func:`models.backbones.fast_frozen_copy`), and the
losses come from :mod:`visualize.losses` (each term relative to its target's size).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from models.backbones import Backbone, fast_frozen_copy, optimisation_memory_format
from visualize.losses import color_distribution_loss, content_loss, gram, image_pixels, pooled, style_loss, tv_loss
from visualize.transforms import resize

Progress = Callable[[int, int], None] | None
LayerSpec = Sequence[str] | Mapping[str, float] | None


@dataclass(frozen=True)
class SynthesisConfig:
    """Loss settings for pixel optimisation on one backbone.

    Weights apply to loss terms that are each normalised by the size of their target
    (see :mod:`visualize.losses`), so they are comparable across layers and backbones.
    ``style_layer_weights`` pairs with ``style_layers`` (None: equal weights).
    """

    style_layers: tuple[str, ...]
    content_layers: tuple[str, ...]
    style_weight: float
    content_weight: float
    tv_weight: float
    steps: int = 300  # L-BFGS iterations for a finished look (150 already painterly at 256-320 px)
    style_layer_weights: tuple[float, ...] | None = None
    # Grams also of the result average-pooled by these factors (bigger strokes), and the weight of
    # the painting's colour distribution inside the style term: as the training loss has them.
    style_scales: tuple[int, ...] = (1,)
    color_weight: float = 0.0

    def style_layer_map(self) -> dict[str, float]:
        w = self.style_layer_weights or (1.0,) * len(self.style_layers)
        return dict(zip(self.style_layers, w, strict=True))


_GATYS_VGG_STYLE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")

# Measured on efficientnet_lite0 (docs notes): style taps at the block outputs (signed, after the
# projection), content at block 4, L-BFGS from the content image, 150-300 iterations.
# VGG: the classic Gatys layers; the weights are the same relative-loss weights, untested here
# (no VGG weights offline), so tune them on a machine that has them.
OPTIMISATION_LOSSES: dict[str, SynthesisConfig] = {
    # With the training loss's pooled Grams and colour term (Gatys at 256 px, 300 L-BFGS steps, five
    # paintings side by side): more saturated Composition VII and Scream, bigger Starry Night
    # swirls, darker Udnie planes; 1.8x the time per step (23 against 13 s on a busy 2-core CPU).
    "efficientnet_lite0": SynthesisConfig(
        style_layers=("stem", "block0", "block2", "block4", "block7"), content_layers=("block4",),
        style_weight=1e3, content_weight=1.0, tv_weight=20.0, steps=300, style_scales=(1, 2), color_weight=1.0),
    "vgg19": SynthesisConfig(style_layers=_GATYS_VGG_STYLE, content_layers=("relu4_2",),
                             style_weight=1e3, content_weight=1.0, tv_weight=20.0, steps=300),
    "vgg16": SynthesisConfig(style_layers=_GATYS_VGG_STYLE, content_layers=("relu4_2",),
                             style_weight=1e3, content_weight=1.0, tv_weight=20.0, steps=300),
}

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "style")
# Default Adam step on pixels in [0, 1] (of 0.02, 0.05, 0.1 the best after 100 steps at 256 px).
_ADAM_LR = 0.05
# L-BFGS memory, and the mean pixel change of its first step.
_LBFGS_HISTORY = 50
_FIRST_STEP = 0.01
# Width of the uniform noise around grey that noise inits start from.
_NOISE = 0.1


def synthesis_config(model: Backbone) -> SynthesisConfig:
    """The default loss settings for ``model``, or a ValueError naming the known backbones."""
    try:
        return OPTIMISATION_LOSSES[model.name]
    except KeyError:
        raise ValueError(f"no default synthesis layers for backbone {model.name!r} (known: "
                         f"{sorted(OPTIMISATION_LOSSES)}); pass the layers explicitly") from None


@dataclass
class LossTerms:
    """The weighted loss terms of one evaluation (total = content + style + tv)."""

    content: float
    style: float
    tv: float
    total: float


@dataclass
class Synthesis:
    """Result of texture synthesis: the image (1, 3, H, W) and the Gram loss per evaluation."""

    image: torch.Tensor
    losses: list[float]
    initial_loss: float
    final_loss: float


@dataclass
class StyleTransfer:
    """Result of style transfer: the image (1, 3, H, W), the loss terms at start and end
    (at full size: the init image and the result), and the terms per evaluation (``history``,
    across all scales)."""

    image: torch.Tensor
    initial: LossTerms
    final: LossTerms
    history: list[LossTerms]

    @property
    def losses(self) -> list[float]:
        return [t.total for t in self.history]


# ----------------------------------------------------------------------------- helpers

def _check_image(x: torch.Tensor, what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{what} must be a (1, 3, H, W) tensor, got {shape}")
    return x.detach().float()


def _layer_map(model: Backbone, layers: LayerSpec, default: Mapping[str, float], what: str) -> dict[str, float]:
    """Layers as {name: weight}; a sequence gets equal weights; checked against the model."""
    if layers is None:
        out = dict(default)
    elif isinstance(layers, Mapping):
        out = {str(k): float(v) for k, v in layers.items()}
    elif isinstance(layers, str):
        out = {layers: 1.0}
    else:
        out = {str(l): 1.0 for l in layers}
    if not out:
        raise ValueError(f"{what} must name at least one layer")
    model.check_layers(out)
    if any(w < 0 or not math.isfinite(w) for w in out.values()) or sum(out.values()) <= 0:
        raise ValueError(f"{what} weights must be >= 0 with a positive sum, got {out}")
    return out


def _check_weight(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


def _scaled_size(h: int, w: int, factor: float) -> tuple[int, int]:
    return max(1, round(h * factor)), max(1, round(w * factor))


@torch.no_grad()
def _target_grams(model: Backbone, images: Sequence[torch.Tensor], weights: Sequence[float],
                  layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """The weighted mean over images of each layer's Gram matrix, (1, C, C) per layer."""
    total = sum(weights)
    out: dict[str, torch.Tensor] = {}
    for img, w in zip(images, weights, strict=True):
        if w == 0:
            continue
        feats = model.features(img, layers)
        for l in layers:
            g = gram(feats[l]) * (w / total)
            out[l] = g if l not in out else out[l] + g
    return out


def _blend_pixels(images: Sequence[torch.Tensor], weights: Sequence[float], count: int = 65536) -> torch.Tensor:
    """The styles' pixels mixed by ``weights``, (1, P, 3): each style gives its share of ``count``
    pixels, taken evenly over the image."""
    total = sum(weights)
    parts = [image_pixels(img, round(count * w / total)) for img, w in zip(images, weights, strict=True)
             if round(count * w / total)]
    return torch.cat(parts, dim=1)


def _split_steps(steps: int, scales: int) -> list[int]:
    """Iterations per scale, coarse to fine: an equal share each, the remainder to the finest."""
    share, rest = divmod(steps, scales)
    return [share] * (scales - 1) + [share + rest]


def _optimise(x: torch.Tensor, loss_fn: Callable[[torch.Tensor], torch.Tensor], steps: int, optimizer: str,
              lr: float | None, line_search: bool, on_step: Callable[[int], None]) -> torch.Tensor:
    """Minimise ``loss_fn`` over the pixels of ``x`` (kept in [0, 1]) for ``steps`` iterations.

    L-BFGS keeps the pixels in range by projection: each evaluation clamps them and zeroes the
    gradient of pixels held at a bound that push outward (a simple active set). Measured on
    efficientnet_lite0, this beat clamping every 10 iterations (which spoils L-BFGS's curvature
    memory: the loss jumped after each clamp, by up to 100x from noise), clamping without the
    active set (diverged) and a sigmoid parametrisation (slower from a content image, equal
    from noise). L-BFGS's own first step moves the pixels by 1/N in all; here it is scaled to a
    mean change of ``_FIRST_STEP``, which gave 3x lower texture losses after 60 iterations.
    Adam clamps after each step. ``on_step(n)`` is told of iterations done.
    """
    # A new, standard-layout tensor (L-BFGS views its gradient flat); the loss converts per call.
    p = x.detach().clamp(0, 1).contiguous().requires_grad_(True)
    if steps <= 0:
        return p.detach()
    if optimizer == "adam":
        opt = torch.optim.Adam([p], lr=lr or _ADAM_LR)
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            loss_fn(p).backward()
            opt.step()
            with torch.no_grad():
                p.clamp_(0, 1)
            on_step(1)
        return p.detach()

    lr = lr or 1.0
    opt = torch.optim.LBFGS([p], lr=lr, history_size=_LBFGS_HISTORY, tolerance_grad=0.0, tolerance_change=1e-12,
                            line_search_fn="strong_wolfe" if line_search else None)
    state = opt.state[p]
    reported = 0

    def closure() -> torch.Tensor:
        nonlocal reported
        finished = min(steps, max(0, state.get("n_iter", 0) - 1))  # n_iter counts the one under way
        if finished > reported:
            on_step(finished - reported)
            reported = finished
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            p.clamp_(0, 1)
        loss = loss_fn(p)
        loss.backward()
        with torch.no_grad():
            g = p.grad
            g.masked_fill_(((p <= 0) & (g > 0)) | ((p >= 1) & (g < 0)), 0.0)
        return loss

    # The first iteration alone, its step scaled (see above; L-BFGS takes min(1, 1/|g|_1) * lr
    # along -g), then the rest in one call so the curvature memory is used throughout.
    closure()
    g_l1 = max(float(p.grad.abs().sum()), 1e-12)
    first = lr * _FIRST_STEP * p.numel() / (g_l1 * min(1.0, 1.0 / g_l1))
    for group_lr, n in ((first, 1), (lr, steps - 1)):
        if n <= 0:
            break
        opt.param_groups[0].update(lr=group_lr, max_iter=n, max_eval=n * 4 if line_search else n + 1)
        opt.step(closure)
        if not torch.isfinite(p).all():
            raise FloatingPointError("the optimisation diverged (non-finite pixels); lower lr")
    if steps > reported:
        on_step(steps - reported)
    return p.detach().clamp(0, 1)


class _Progress:
    def __init__(self, total: int, callback: Progress):
        self.total, self.done, self.callback = total, 0, callback

    def __call__(self, n: int) -> None:
        self.done = min(self.total, self.done + n)
        if self.callback is not None:
            self.callback(self.done, self.total)

    def finish(self) -> None:
        if self.done < self.total:
            self(self.total - self.done)


def _check_optimizer(optimizer: str) -> str:
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {list(OPTIMIZERS)}")
    return optimizer


# ----------------------------------------------------------------------------- texture synthesis

def texture_synthesis(model: Backbone, texture: torch.Tensor, size: tuple[int, int] | None = None,
                      layers: Sequence[str] | None = None, steps: int = 200, optimizer: str = "lbfgs",
                      seed: int = 0, progress: Progress = None, *, lr: float | None = None,
                      line_search: bool = False, tv_weight: float = 0.0, noise: float = _NOISE,
                      channels_last: bool | None = None) -> Synthesis:
    """A new image with the texture's Gram matrices, from noise (Gatys et al. 2015).

    Which layers are matched sets the scale of what is reproduced: shallow layers give
    colours and fine grain, deeper ones larger structures. ``layers`` (a list, or a
    {layer: weight} mapping) defaults to the backbone's style layers
    (:data:`OPTIMISATION_LOSSES`). ``size`` (H, W) defaults to the texture's size.

    The start is grey plus uniform noise of width ``noise`` (0.1: noise of full range is left
    behind as coloured pixel noise, which this backbone's stride-2 stem hardly sees).
    ``tv_weight`` > 0 adds a smoothness prior (not in the paper).
    ``losses`` holds the Gram loss (without the TV term) at each evaluation.
    """
    texture = _check_image(texture, "texture")
    _check_optimizer(optimizer)
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    tv_weight = _check_weight("tv_weight", tv_weight)
    noise = _check_weight("noise", noise)
    weights = _layer_map(model, layers, synthesis_config(model).style_layer_map() if layers is None else {},
                         "layers")
    h, w = (int(v) for v in (size if size is not None else texture.shape[-2:]))
    if h < 1 or w < 1:
        raise ValueError(f"size must be positive, got {size}")
    fmt = optimisation_memory_format(channels_last, texture.device)
    model = fast_frozen_copy(model)
    targets = _target_grams(model, [texture.contiguous(memory_format=fmt)], [1.0], list(weights))
    gen = torch.Generator().manual_seed(seed)
    x0 = 0.5 + (torch.rand((1, 3, h, w), generator=gen) - 0.5) * min(noise, 1.0)
    x0 = x0.to(texture.device)

    history: list[torch.Tensor] = []

    def gram_loss(x: torch.Tensor) -> torch.Tensor:
        return style_loss(model.features(x.contiguous(memory_format=fmt), weights), targets, weights).sum()

    def loss_fn(x: torch.Tensor) -> torch.Tensor:
        loss = gram_loss(x)
        history.append(loss.detach())
        return loss + tv_weight * tv_loss(x).sum() if tv_weight else loss

    with torch.no_grad():
        initial = float(gram_loss(x0))
    bar = _Progress(steps, progress)
    x = _optimise(x0, loss_fn, steps, optimizer, lr, line_search, bar)
    with torch.no_grad():
        final = float(gram_loss(x))
    losses = torch.stack(history).tolist() if history else []
    return Synthesis(image=x.contiguous(), losses=losses, initial_loss=initial, final_loss=final)


# ----------------------------------------------------------------------------- style transfer

# YIQ (NTSC): Y is luminance, I and Q carry the colour.
_RGB2YIQ = torch.tensor([[0.299, 0.587, 0.114],
                         [0.595716, -0.274453, -0.321263],
                         [0.211456, -0.522591, 0.311135]])


def rgb_to_yiq(x: torch.Tensor) -> torch.Tensor:
    """RGB (B, 3, H, W) -> YIQ (B, 3, H, W)."""
    return torch.einsum("ij,bjhw->bihw", _RGB2YIQ.to(x), x)


def yiq_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """YIQ (B, 3, H, W) -> RGB (B, 3, H, W), not clamped."""
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(_RGB2YIQ.double()).to(x), x)


def _luminance(x: torch.Tensor) -> torch.Tensor:
    return rgb_to_yiq(x)[:, :1]


def _match_luminance(style: torch.Tensor, content_y: torch.Tensor) -> torch.Tensor:
    """The style's luminance as grey RGB, shifted and scaled to the content luminance's mean and std."""
    y = _luminance(style)
    y = (y - y.mean()) / y.std().clamp_min(1e-6) * content_y.std() + content_y.mean()
    return y.clamp(0, 1).expand(-1, 3, -1, -1)


def style_transfer(model: Backbone, content: torch.Tensor, styles: Sequence[torch.Tensor],
                   style_blend: Sequence[float] | None = None, content_weight: float | None = None,
                   style_weight: float | None = None, tv_weight: float | None = None,
                   content_layers: LayerSpec = None, style_layers: LayerSpec = None,
                   preserve_color: bool = False, scales: int = 1, optimizer: str = "lbfgs", steps: int = 300,
                   init: str = "content", seed: int = 0, progress: Progress = None, *,
                   lr: float | None = None, line_search: bool = False,
                   channels_last: bool | None = None, style_scales: Sequence[int] | None = None,
                   color_weight: float | None = None) -> StyleTransfer:
    """Gatys et al. (2016) style transfer by optimising the pixels of the result.

    Loss = content_weight * content + style_weight * style + tv_weight * total variation, with
    defaults from :data:`OPTIMISATION_LOSSES` for this backbone. Layers may be a list (equal
    weights) or a {layer: weight} mapping.

    - Several styles: the target Gram of each layer is the ``style_blend``-weighted mean of the
      styles' Grams (equal weights by default). Style images may have any size.
    - ``preserve_color``: luminance-only transfer (Gatys et al. 2017): the optimisation runs on
      the YIQ luminance (each style's luminance matched to the content's mean and std, shown to
      the network as grey), and the result's luminance is recombined with the content's I and Q.
    - ``scales`` > 1: coarse to fine. Scale k of s runs at the full size / 2^(s-1-k) (content and
      styles shrunk by the same factor, so strokes keep their size relative to the image), each
      result upsampled as the next scale's start. ``steps`` is split equally across the scales,
      the remainder going to the finest; the coarse scales cost 1/4, 1/16 ... per step.
    - ``optimizer``: "lbfgs" (``steps`` iterations; ``line_search`` turns on the strong-Wolfe line
      search) or "adam" (``lr``, default 0.05). Measured at 96 and 256 px: L-BFGS without the line
      search reaches a lower loss per evaluation than with it (20.2 against 20.4 after 100) and
      than Adam (27 after 100, 9.9 against 12.6 at 256 px); evaluations are the cost.
    - ``init``: "content", "noise" (uniform, from ``seed``) or "style" (the first style resized).
    - ``style_scales``: the Gram loss also on the result average-pooled by each factor, against
      the styles pooled alike (averaged over the factors); ``color_weight``: the sliced
      Wasserstein distance of the RGB pixel distributions (``visualize.losses``), with the same
      pixels and directions at every evaluation so that L-BFGS sees one function; both inside the
      style term, as in training. Off for ``preserve_color`` (the colours are the photo's).
    ``initial``/``final`` are the terms at full size for the init image and for the result.
    """
    content = _check_image(content, "content")
    if isinstance(styles, torch.Tensor):
        styles = [styles] if styles.dim() == 4 and styles.shape[0] == 1 else list(styles.unbind(0))
    styles = [_check_image(s[None] if isinstance(s, torch.Tensor) and s.dim() == 3 else s, f"styles[{i}]")
              .to(content.device) for i, s in enumerate(styles)]
    if not styles:
        raise ValueError("styles is empty: give at least one style image")
    if style_blend is None:
        blend = [1.0] * len(styles)
    else:
        blend = [float(b) for b in style_blend]
        if len(blend) != len(styles):
            raise ValueError(f"style_blend has {len(blend)} weights for {len(styles)} styles")
        if any(b < 0 or not math.isfinite(b) for b in blend) or sum(blend) <= 0:
            raise ValueError(f"style_blend weights must be >= 0 with a positive sum, got {blend}")
    _check_optimizer(optimizer)
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; choose one of {list(INITS)}")
    if scales < 1 or steps < 0:
        raise ValueError(f"scales must be >= 1 and steps >= 0, got scales={scales}, steps={steps}")
    if model.name not in OPTIMISATION_LOSSES and (style_layers is None or content_layers is None):
        synthesis_config(model)  # raises the ValueError naming the known backbones
    # Another backbone with explicit layers: the weights of the relative losses still serve.
    known = OPTIMISATION_LOSSES.get(model.name, OPTIMISATION_LOSSES["efficientnet_lite0"])
    s_layers = _layer_map(model, style_layers, known.style_layer_map(), "style_layers")
    c_layers = _layer_map(model, content_layers, dict.fromkeys(known.content_layers, 1.0), "content_layers")
    wc = _check_weight("content_weight", content_weight if content_weight is not None else known.content_weight)
    ws = _check_weight("style_weight", style_weight if style_weight is not None else known.style_weight)
    wt = _check_weight("tv_weight", tv_weight if tv_weight is not None else known.tv_weight)
    pool_factors = tuple(int(f) for f in (style_scales if style_scales is not None else known.style_scales))
    if not pool_factors or min(pool_factors) < 1:
        raise ValueError(f"style_scales must be pooling factors >= 1, got {style_scales}")
    wcol = 0.0 if preserve_color else _check_weight(
        "color_weight", color_weight if color_weight is not None else known.color_weight)
    all_layers = list(dict.fromkeys([*s_layers, *c_layers]))
    fmt = optimisation_memory_format(channels_last, content.device)
    model = fast_frozen_copy(model)

    # What the network sees: RGB, or the luminance as grey RGB.
    if preserve_color:
        content_yiq = rgb_to_yiq(content)
        seen_content = content_yiq[:, :1].expand(-1, 3, -1, -1)
        seen_styles = [_match_luminance(s, content_yiq[:, :1]) for s in styles]
    else:
        seen_content, seen_styles = content, styles

    h, w = content.shape[-2:]
    gen = torch.Generator().manual_seed(seed)
    if init == "content":
        x = seen_content
    elif init == "style":
        x = resize(seen_styles[0], (h, w))
    else:
        x = (0.5 + (torch.rand((1, 3, h, w), generator=gen) - 0.5) * _NOISE).to(content.device)
    if preserve_color:
        x = _luminance(x) if init == "noise" else x[:, :1]  # optimise one channel, shown as grey

    def make_loss(c_img: torch.Tensor, s_imgs: Sequence[torch.Tensor]):
        """The loss at one scale, with its targets computed once: loss_fn(img, record=None)."""
        c_img = c_img.contiguous(memory_format=fmt)
        targets_g = {f: _target_grams(model, [pooled(s, f).contiguous(memory_format=fmt) for s in s_imgs], blend,
                                      list(s_layers)) for f in pool_factors}
        palette = _blend_pixels(s_imgs, blend) if wcol else None
        with torch.no_grad():
            targets_c = model.features(c_img, c_layers)

        def style_term(img: torch.Tensor, feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
            s = sum(style_loss(feats if f == 1 else model.features(pooled(img, f).contiguous(memory_format=fmt),
                                                                  list(s_layers)), targets_g[f], s_layers)
                    for f in pool_factors) / len(pool_factors)
            if palette is not None:  # the same samples at every evaluation: one function for L-BFGS
                gen = torch.Generator(device=img.device).manual_seed(seed)
                s = s + wcol * color_distribution_loss(img, palette, generator=gen)
            return s

        def loss_fn(img: torch.Tensor, record: list[torch.Tensor] | None = None) -> torch.Tensor:
            if preserve_color:
                img = img.expand(-1, 3, -1, -1)
            feats = model.features(img.contiguous(memory_format=fmt), all_layers)
            zero = img.new_zeros((), dtype=torch.float32)
            lc = wc * content_loss(feats, targets_c, c_layers).sum() if wc else zero
            ls = ws * style_term(img, feats).sum() if ws else zero
            lt = wt * tv_loss(img).sum() if wt else zero
            total = lc + ls + lt
            if record is not None:  # tensors, not floats: no device sync per evaluation
                record.append(torch.stack([lc.detach(), ls.detach(), lt.detach(), total.detach()]))
            return total

        return loss_fn

    history: list[torch.Tensor] = []
    ends: list[torch.Tensor] = []  # the terms at full size for the init image and the result
    bar = _Progress(steps, progress)
    full_loss = make_loss(seen_content, seen_styles)
    with torch.no_grad():
        full_loss(x, ends)
    for k, n in enumerate(_split_steps(steps, scales)):
        factor = 0.5 ** (scales - 1 - k)
        size = _scaled_size(h, w, factor)
        if factor == 1:
            loss_fn = full_loss
        else:
            s_sized = [resize(s, _scaled_size(*s.shape[-2:], factor)) for s in seen_styles]
            loss_fn = make_loss(resize(seen_content, size), s_sized)
        x = _optimise(resize(x, size), lambda v, f=loss_fn: f(v, history), n, optimizer, lr, line_search, bar)
    bar.finish()
    with torch.no_grad():
        full_loss(x, ends)

    if preserve_color:
        image = yiq_to_rgb(torch.cat([x, content_yiq[:, 1:]], dim=1)).clamp(0, 1)
    else:
        image = x
    start, end = (LossTerms(*v) for v in torch.stack(ends).tolist())
    hist = [LossTerms(*v) for v in torch.stack(history).tolist()] if history else []
    return StyleTransfer(image=image.contiguous(), initial=start, final=end, history=hist)


__all__ = ["SynthesisConfig", "OPTIMISATION_LOSSES", "synthesis_config", "LossTerms", "Synthesis", "StyleTransfer",
           "texture_synthesis", "style_transfer", "rgb_to_yiq", "yiq_to_rgb"]
