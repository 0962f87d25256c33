"""Export a trained style network to ONNX, with metadata and a numeric parity check.

The graph takes ``image`` (float32 NCHW RGB in [0, 1], any batch, height and width)
and, for a network of several styles, ``style_weights`` (float32, batch x styles);
it returns ``stylized`` in the same format. The style names and training settings
are stored in the model's metadata for the runner and ``stylize``.
"""

from __future__ import annotations

import copy
import json
import os
import re
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.common.errors import UserError
from models.common.files import atomic_path
from models.inference.onnx_style import META_ARCH, META_BORDER_PAD, META_FORMAT, META_STYLES, META_TRAINING, TENSOR_FORMAT
from models.style_net import StyleNet
from training.checkpoint import load_checkpoint, style_net_from_checkpoint

OPSET = 18
# Largest max-abs difference from torch (outputs in [0, 1]) that an export may have.
PARITY_TOLERANCE = {False: 1e-3, True: 2e-2}  # by fp16


class _Exportable(nn.Module):
    """Fixes the graph's inputs and optional float16 compute behind float32 I/O."""

    def __init__(self, net: StyleNet, fp16: bool):
        super().__init__()
        self.net = copy.deepcopy(net).half() if fp16 else net
        self.fp16 = fp16

    def forward(self, image: torch.Tensor, style_weights: torch.Tensor | None = None) -> torch.Tensor:
        if self.fp16:
            image = image.half()
            style_weights = style_weights.half() if style_weights is not None else None
        return self.net(image, style_weights).float()


def _strip_debug_metadata(model) -> None:
    """Drop the exporter's per-node debug records (stack traces with this machine's paths,
    FX node dumps): they are a third of the file and tell a user's runtime nothing."""
    for node in model.graph.node:
        del node.metadata_props[:]
    for value in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
        del value.metadata_props[:]


def export_style_net(net: StyleNet, out: str | os.PathLike, fp16: bool = False,
                     metadata: dict[str, str] | None = None) -> Path:
    """Write ``net`` as an ONNX file with dynamic batch, height and width; returns the path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    net = net.eval().cpu()
    module = _Exportable(net, fp16).eval()
    conditional = net.num_styles > 1
    image = torch.rand(1, 3, 64, 80)
    batch = torch.export.Dim("batch", min=1, max=1024)
    height = torch.export.Dim("height", min=16, max=16384)
    width = torch.export.Dim("width", min=16, max=16384)
    args: tuple = (image,)
    shapes: dict = {"image": {0: batch, 2: height, 3: width}}
    inputs = ["image"]
    if conditional:
        args += (torch.full((1, net.num_styles), 1.0 / net.num_styles),)
        shapes["style_weights"] = {0: batch}
        inputs.append("style_weights")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation chatter is not the user's business
        program = torch.onnx.export(module, args, input_names=inputs, output_names=["stylized"],
                                    dynamo=True, opset_version=OPSET, dynamic_shapes=shapes,
                                    verbose=False, optimize=True)
    import onnx

    model = program.model_proto
    _strip_debug_metadata(model)
    meta = {META_FORMAT: TENSOR_FORMAT, **(metadata or {})}
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    with atomic_path(out) as tmp:
        onnx.save(model, str(tmp))
    return out


def parity(net: StyleNet, onnx_path: str | os.PathLike,
           sizes: tuple[tuple[int, int], ...] = ((240, 320), (181, 263))) -> float:
    """Max absolute difference between torch and onnxruntime outputs over ``sizes`` (H, W).

    A conditional network is compared on a blend of all its styles; a model with a border pad
    is compared with the network run on the same mirrored margin.
    """
    from models.inference.onnx_style import OnnxStyleModel

    model = OnnxStyleModel(onnx_path, providers=["CPUExecutionProvider"])
    p = model.border_pad
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    for h, w in sizes:
        x = torch.rand(1, 3, h, w, generator=gen)
        weights = torch.softmax(torch.randn(1, net.num_styles, generator=gen), 1) if net.num_styles > 1 else None
        with torch.no_grad():
            ref = net(F.pad(x, (p, p, p, p), mode="reflect"), weights)[..., p:p + h, p:p + w] if p else net(x, weights)
            ref = ref.numpy()
        got = model.run(x.numpy(), None if weights is None else weights.numpy())
        worst = max(worst, float(np.abs(got - ref).max()))
    return worst


def weights_source_for_others(source: str) -> str:
    """Where a loss network's weights came from, without the path on this machine (a shared model
    should not carry the trainer's folders)."""
    return re.sub(r" \([^()]*[/\\][^()]*\)$", "", source)


def export_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike, fp16: bool = False,
                      border_pad: int = 0) -> tuple[Path, float]:
    """Export a training checkpoint; returns the ONNX path and the parity error.

    ``border_pad`` pixels of mirrored margin are added around every input at run time
    (see ``models.inference.onnx_style.META_BORDER_PAD``).
    """
    if border_pad < 0:
        raise UserError(f"--border-pad must be 0 or more, not {border_pad}")
    ckpt = load_checkpoint(checkpoint)
    net = style_net_from_checkpoint(ckpt, checkpoint)
    cfg = ckpt["config"]
    training = {k: cfg[k] for k in ("arch", "net", "loss_net", "loss_net_weights", "loss", "settings", "precision", "world_size",
                                    "wall_seconds", "style_weights_used") if k in cfg}
    training["step"] = int(ckpt["step"])
    if training.get("loss_net_weights"):
        training["loss_net_weights"] = weights_source_for_others(training["loss_net_weights"])
    if "settings" in training:  # file names only: a shared model should not carry the trainer's paths
        st = dict(training["settings"])
        st["style"] = [Path(p).name for p in st.get("style", [])]
        st["data"] = Path(st["data"]).name if st.get("data") else None
        st.pop("out", None)
        st.pop("loss_net_weights", None)
        training["settings"] = st
    meta = {META_STYLES: json.dumps(cfg["styles"]), META_ARCH: cfg["arch"], META_TRAINING: json.dumps(training)}
    if border_pad:
        meta[META_BORDER_PAD] = str(border_pad)
    path = export_style_net(net, out, fp16=fp16, metadata=meta)
    err = parity(net, path)  # fp16 is compared with the fp32 network it came from
    if not err <= PARITY_TOLERANCE[fp16]:
        path.unlink(missing_ok=True)
        raise UserError(f"{out}: the exported model differs from torch by {err:.2e} (more than "
                        f"{PARITY_TOLERANCE[fp16]:.0e}); nothing was written")
    return path, err


def manifest_entry(checkpoint: str | os.PathLike, name: str, onnx_file: str | os.PathLike,
                   styles: list[dict], parity_err: float, command: str, machine: str,
                   border_pad: int = 0) -> dict:
    """A style model's manifest entry (the shipped zoo's and the user folder's): its file,
    styles with their thumbnails, architecture, loss, and how, where and how long it trained."""
    import datetime

    ckpt = load_checkpoint(checkpoint)
    cfg = ckpt["config"]
    settings = cfg["settings"]
    return {
        "name": name, "file": Path(onnx_file).name, "arch": cfg["arch"], "styles": styles,
        "loss_net": cfg["loss_net"], "loss": cfg["loss"],
        **({"loss_net_weights": weights_source_for_others(cfg["loss_net_weights"])} if cfg.get("loss_net_weights") else {}),
        "training": {"steps": int(ckpt["step"]), "size": settings["size"], "batch": settings["batch"],
                     "lr": settings["lr"], "precision": cfg.get("precision"), "data": Path(settings["data"]).name,
                     "command": command, "machine": machine,
                     "wall_seconds": round(float(cfg.get("wall_seconds", 0.0))),
                     **({"stability_weight": settings["stability_weight"], "stability_noise": settings["stability_noise"]}
                        if settings.get("stability_weight") else {}),
                     # the style calibration's target and the weights it chose (see training.losses)
                     **({"structure_target": settings["structure_target"],
                         "style_weights_used": cfg.get("style_weights_used")}
                        if settings.get("structure_target") else {})},
        **({"border_pad": border_pad} if border_pad else {}),
        "parity_max_abs_diff": parity_err,
        "date": datetime.date.today().isoformat(),
        "bytes": Path(onnx_file).stat().st_size,
    }
