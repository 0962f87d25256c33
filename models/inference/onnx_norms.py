"""Two derived graphs of a style network so that tiles of one image are normalised alike.

Instance normalisation takes each channel's mean and variance over the whole input, so a
tile run alone is normalised by its own content and neighbouring tiles disagree (sky
against a street: the same style in another brightness and contrast). Instead:

- :func:`with_norm_statistics` outputs, besides the image, the mean and the variance of the
  input of every ``InstanceNormalization`` (run once, on a downscaled copy of the image);
- :func:`with_given_norms` replaces every ``InstanceNormalization`` by the same arithmetic with
  those statistics as inputs (``norm_mean_K``, ``norm_inv_std_K``; K in graph order), so every
  tile is normalised by the statistics of the whole image.

Scale and bias stay the graph's own tensors, so conditional (many-style) networks keep their
``style_weights`` input. Needs the ``onnx`` package, not torch.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MEAN, INV_STD = "norm_mean_{}", "norm_inv_std_{}"


def _norms(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if n.op_type == "InstanceNormalization" and n.domain in ("", "ai.onnx")]


def _epsilon(node: onnx.NodeProto) -> float:
    return next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)


def norm_count(model: onnx.ModelProto) -> int:
    return len(_norms(model))


def with_norm_statistics(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy that also outputs ``norm_mean_K`` and ``norm_var_K`` (N, C, 1, 1) of every instance norm's input."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    g.initializer.append(numpy_helper.from_array(np.array([2, 3], np.int64), "norm_stat_axes"))
    for k, node in enumerate(_norms(out)):
        x, mean, var = node.input[0], MEAN.format(k), f"norm_var_{k}"
        g.node.extend([
            helper.make_node("ReduceMean", [x, "norm_stat_axes"], [mean], keepdims=1),
            helper.make_node("Sub", [x, mean], [f"norm_centred_{k}"]),
            helper.make_node("Mul", [f"norm_centred_{k}", f"norm_centred_{k}"], [f"norm_square_{k}"]),
            helper.make_node("ReduceMean", [f"norm_square_{k}", "norm_stat_axes"], [var], keepdims=1),
        ])
        g.output.extend([helper.make_tensor_value_info(mean, TensorProto.FLOAT, None),
                         helper.make_tensor_value_info(var, TensorProto.FLOAT, None)])
    return out


def inverse_std(model: onnx.ModelProto, variances: list[np.ndarray]) -> list[np.ndarray]:
    """1 / sqrt(var + epsilon) with each norm's own epsilon."""
    return [(1.0 / np.sqrt(v + np.float32(_epsilon(n)))).astype(np.float32) for n, v in zip(_norms(model), variances)]


def with_given_norms(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose instance norms compute ``(x - norm_mean_K) * norm_inv_std_K * scale + bias``."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    g.initializer.append(numpy_helper.from_array(np.array([1, -1, 1, 1], np.int64), "norm_channel_shape"))
    nodes, k = [], 0
    for node in g.node:
        if not (node.op_type == "InstanceNormalization" and node.domain in ("", "ai.onnx")):
            nodes.append(node)
            continue
        x, scale, bias = node.input
        mean, inv = MEAN.format(k), INV_STD.format(k)
        nodes += [
            helper.make_node("Sub", [x, mean], [f"given_centred_{k}"]),
            helper.make_node("Mul", [f"given_centred_{k}", inv], [f"given_normed_{k}"]),
            helper.make_node("Reshape", [scale, "norm_channel_shape"], [f"given_scale_{k}"]),
            helper.make_node("Reshape", [bias, "norm_channel_shape"], [f"given_bias_{k}"]),
            helper.make_node("Mul", [f"given_normed_{k}", f"given_scale_{k}"], [f"given_scaled_{k}"]),
            helper.make_node("Add", [f"given_scaled_{k}", f"given_bias_{k}"], [node.output[0]]),
        ]
        g.input.extend([helper.make_tensor_value_info(mean, TensorProto.FLOAT, None),
                        helper.make_tensor_value_info(inv, TensorProto.FLOAT, None)])
        k += 1
    nodes = [type(n).FromString(n.SerializeToString()) for n in nodes]  # copies: the originals go with the clear
    del g.node[:]
    g.node.extend(nodes)
    return out
