"""A backbone's forward pass to one layer (or its written-out input gradient), exported to ONNX once
and run by the fast engines.

The live effects that need no gradient (activation maps; class activation maps, which for a
network ending in global average pooling and one linear layer, as EfficientNet-Lite0 does, are
Grad-CAM without a backward pass) run the layer's graph on ONNX Runtime or OpenVINO, whichever a
short probe finds faster here, as the style networks do. The graph takes RGB [0, 1] NCHW (the
backbone's normalisation inside) and gives the layer's activations, and the logits when
asked, at one input size. It is exported from a copy with the BatchNorms folded and cached under the
user cache, keyed by the network, its weights, the layer, the size and the torch version, so the
export (a second or two) happens once per machine and size.
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.backbones import Backbone, fold_batchnorm
from models.common.files import atomic_path
from models.common.paths import user_cache_dir


class _StaticSame(nn.Module):
    """A ``Conv2dSame`` as an explicit pad and a plain convolution: traced at one input size, its
    padding becomes constants that every exporter and engine handles."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv
        ih, iw = (int(v) for v in x.shape[-2:])
        (kh, kw), (sh, sw) = c.weight.shape[-2:], c.stride
        ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2]) if ph or pw else x
        return F.conv2d(x, c.weight, c.bias, c.stride, 0, c.dilation, c.groups)


def _exportable(backbone: Backbone) -> Backbone:
    """A frozen copy with the BatchNorms folded and every "same" convolution made static."""
    from models.efficientnet_lite import Conv2dSame

    net = fold_batchnorm(backbone)
    if net is backbone:
        net = copy.deepcopy(backbone)
    for name, module in list(net.named_modules()):
        if isinstance(module, Conv2dSame):
            net.set_submodule(name, _StaticSame(module))
    return net


class _Tap(nn.Module):
    """``backbone`` to ``layer`` (and on to the logits when ``logits``)."""

    def __init__(self, backbone: Backbone, layer: str, logits: bool):
        super().__init__()
        backbone.check_layers([layer])
        self.backbone, self.layer, self.logits = backbone, layer, logits

    def forward(self, x: torch.Tensor):
        h = self.backbone.normalize(x)
        tap = None
        for name, stage in self.backbone.stages.items():
            h = stage(h)
            if name == self.layer:
                tap = h
                if not self.logits:
                    break
        return (tap, self.backbone.classifier(h)) if self.logits else tap


def _digest(backbone: Backbone, layer: str, logits: bool, hw: tuple[int, int]) -> str:
    h = hashlib.sha1(f"{backbone.name}|{layer}|{logits}|{hw}|{torch.__version__}|v1".encode())
    for key, value in backbone.state_dict().items():
        h.update(key.encode())
        h.update(value.detach().cpu().numpy().tobytes()[:4096])  # enough to tell weights apart, fast
    return h.hexdigest()[:16]


def export_tap(backbone: Backbone, layer: str, hw: tuple[int, int], logits: bool = False) -> Path:
    """The ONNX file of ``backbone`` to ``layer`` for inputs of ``hw`` (outputs ``features``, and
    ``logits`` when asked), exported now (a second or two) or found in the cache. One size per file:
    EfficientNet's "same" padding depends on it, and a live effect runs at one size."""
    if logits and not backbone.has_classifier:
        backbone._need_classifier()
    key = _digest(backbone, layer, logits, hw)
    path = user_cache_dir() / "backbones" / f"{backbone.name}_{layer}{'_logits' if logits else ''}_{hw[0]}x{hw[1]}_{key}.onnx"
    if path.is_file():
        return path
    net = _Tap(_exportable(backbone), layer, logits).eval()
    names = ["features", "logits"] if logits else ["features"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.rand(1, 3, *hw),), str(tmp), input_names=["image"], output_names=names,
                          opset_version=17, dynamo=False)
    return path


def export_gradient(backbone: Backbone, objective: str, hw: tuple[int, int], batch: int = 1) -> Path | None:
    """The ONNX file of :class:`models.input_gradient.InputGradient` (``objective``: class, guided,
    dream:LAYER) for ``batch`` images of ``hw``, exported now or found in the cache; None where the
    gradient is not written out for this network (VGG: the live effects keep PyTorch there)."""
    from models.input_gradient import gradient_fn

    net = gradient_fn(backbone, objective)
    if net is None:
        return None
    key = _digest(backbone, objective, False, (batch, *hw))
    path = user_cache_dir() / "backbones" / f"{backbone.name}_grad_{objective.replace(':', '-')}_{batch}x{hw[0]}x{hw[1]}_{key}.onnx"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    example = (torch.rand(batch, 3, *hw), torch.zeros(batch, 1000))
    with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, example, str(tmp), input_names=["image", "class_weights"],
                          output_names=["gradient", "out"], opset_version=17, dynamo=False)
    return path


class TapEngine:
    """An exported graph on the faster CPU engine here: ``engine(x, **other_inputs)`` -> the outputs
    (numpy); inputs the graph does not take are left out (an exporter drops unused ones)."""

    def __init__(self, path: Path, threads: int | None = None, backend: str = "auto"):
        self.path, self.threads, self.backend = Path(path), threads, backend
        self._session = None

    def _open(self, feeds: dict[str, np.ndarray]) -> None:
        from models.inference.backends import OpenVinoSession, openvino_available
        from models.inference.onnx_style import _session_options

        import onnxruntime as ort

        sessions = {}
        if self.backend in ("auto", "onnxruntime"):
            sessions["onnxruntime"] = ort.InferenceSession(str(self.path), _session_options(self.threads),
                                                          providers=["CPUExecutionProvider"])
        if self.backend in ("auto", "openvino") and openvino_available():
            sessions["openvino"] = OpenVinoSession(self.path, self.threads, rewrite=False)  # no style decoder
        onnx_session = sessions.get("onnxruntime")
        outputs = [o.name for o in onnx_session.get_outputs()] if onnx_session else None
        self._inputs = ({i.name for i in onnx_session.get_inputs()} if onnx_session else
                        {n for p in sessions["openvino"].compiled.inputs for n in p.get_names()})
        feeds = {k: v for k, v in feeds.items() if k in self._inputs}
        timing = {}
        for name, s in sessions.items():
            names = outputs or [o.get_any_name() for o in s.compiled.outputs]
            s.run(names, feeds)  # warm-up
            t = time.perf_counter()
            s.run(names, feeds)
            timing[name] = time.perf_counter() - t
        self.backend = min(timing, key=timing.get)
        self._session = sessions[self.backend]
        self._names = outputs or [o.get_any_name() for o in self._session.compiled.outputs]

    def __call__(self, x: np.ndarray, **inputs: np.ndarray) -> list[np.ndarray]:
        feeds = {"image": np.ascontiguousarray(x, dtype=np.float32),
                 **{k: np.ascontiguousarray(v, dtype=np.float32) for k, v in inputs.items()}}
        if self._session is None:
            self._open(feeds)
        return self._session.run(self._names, {k: v for k, v in feeds.items() if k in self._inputs})


def class_weights(backbone: Backbone) -> np.ndarray:
    """The last linear layer's weights (classes, channels): a class activation map is their row of the
    class dotted with the features of the last spatial layer (networks ending in average pooling and
    one linear layer: EfficientNet-Lite0)."""
    linear = [m for m in backbone.classifier.modules() if isinstance(m, nn.Linear)][-1]
    return linear.weight.detach().float().cpu().numpy()
