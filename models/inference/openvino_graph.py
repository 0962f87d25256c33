"""Exact rewrites of a style network's graph that OpenVINO runs faster.

The decoder of every style network here doubles its feature map with nearest upsampling, pads
it by reflection and applies a 3x3 convolution. On the doubled map that convolution sees each
input pixel up to four times, so the same output is a transposed convolution with stride 2 and a
4x4 kernel on the small map, edge-padded by one pixel (the reflection of a nearest-upsampled map
is the upsampled edge padding). It does 4/9 of the multiply-adds, and the full-size upsampled
and padded maps are never written: on the 2-core AMX Xeon of docs/performance.md the default
network at 640x480 in bf16 went from 45-47 to 40-41 ms on two threads and from 76-79 to 64-65 ms
on one. Upsampling by nearest neighbour does not double exactly when a side is not a multiple
of 2 ** (the number of upsamplings): :func:`exact_multiple` gives that number, and callers keep
the original graph for other sizes.

For one axis, with ``W = (w0, w1, w2)`` the convolution's taps and ``x'`` the edge-padded input:
``y[2i] = w0 x'[i-1] + (w1 + w2) x'[i]`` and ``y[2i+1] = (w0 + w1) x'[i] + w2 x'[i+1]``, the
transposed convolution with kernel ``(w2, w1 + w2, w0 + w1, w0)`` and padding 3. Needs openvino.
"""

from __future__ import annotations

import numpy as np

# The 4 taps of the transposed convolution from the 3 taps of the convolution (rows: taps).
_TAPS = np.array([[0, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0]], np.float32)
VERSION = 1  # part of the backend probe's cache key: a changed rewrite is timed again


def _upsample_pad_conv(conv):
    """(upsampling node, 3x3 weights (out, in, 3, 3)) if ``conv`` convolves a reflection-padded
    nearest 2x upsampling with constant weights and stride 1; else None."""
    if conv.get_type_name() != "Convolution":
        return None
    attrs = conv.get_attributes()
    if list(attrs["strides"]) != [1, 1] or list(attrs["dilations"]) != [1, 1] or any(attrs["pads_begin"]) \
            or any(attrs["pads_end"]):
        return None
    pad, weights = conv.input_value(0).get_node(), conv.input_value(1).get_node()
    if weights.get_type_name() != "Constant" or pad.get_type_name() != "Pad" \
            or pad.get_attributes().get("pad_mode") != "reflect":
        return None
    begin, end = pad.input_value(1).get_node(), pad.input_value(2).get_node()
    if begin.get_type_name() != "Constant" or end.get_type_name() != "Constant" \
            or begin.get_data().tolist() != [0, 0, 1, 1] or end.get_data().tolist() != [0, 0, 1, 1]:
        return None
    up = pad.input_value(0).get_node()
    if up.get_type_name() != "Interpolate":
        return None
    a = up.get_attributes()
    # nearest with floor of the asymmetric coordinate (x[o // 2] when it doubles), as torch exports
    # F.interpolate(mode="nearest"); other modes pick other pixels and have no such kernel
    if (a.get("mode"), a.get("coordinate_transformation_mode"), a.get("nearest_mode")) != \
            ("nearest", "asymmetric", "floor") or any(a.get("pads_begin", [])) or any(a.get("pads_end", [])):
        return None
    w = weights.get_data().astype(np.float32)
    if w.ndim != 4 or w.shape[2:] != (3, 3):
        return None
    return up, w


def upsampling_as_transposed_conv(model) -> int:
    """Rewrite, in place, every nearest 2x upsampling -> reflection pad 1 -> 3x3 convolution of
    ``model`` (an ``openvino.Model``) as edge pad 1 -> transposed convolution; returns how many.

    The result equals the original (to float rounding) only for inputs whose sides are multiples
    of :func:`exact_multiple` of the count, and only where each matched upsampling doubles both
    sides, as this project's decoders do (the size comes from the graph at run time: a network
    whose output then differs in size from its input was not one of them, and
    :class:`models.inference.backends.OpenVinoSession` falls back to the exported graph)."""
    import openvino.opset13 as ops

    count = 0
    for conv in model.get_ordered_ops():
        found = _upsample_pad_conv(conv)
        if found is None:
            continue
        up, w = found
        kernel = np.einsum("ak,oikl,bl->ioab", _TAPS, w, _TAPS).astype(np.float32)  # (in, out, 4, 4)
        one = np.array([0, 0, 1, 1], np.int64)
        padded = ops.pad(up.input_value(0), one, one, "edge")
        transposed = ops.convolution_backprop_data(padded, ops.constant(kernel), strides=[2, 2],
                                                   pads_begin=[3, 3], pads_end=[3, 3], dilations=[1, 1])
        transposed.set_friendly_name(conv.get_friendly_name() + "/as_transposed")
        for target in conv.output(0).get_target_inputs():
            target.replace_source_output(transposed.output(0))
        count += 1
    if count:
        model.validate_nodes_and_infer_types()
    return count


def exact_multiple(rewritten: int) -> int:
    """The multiple both sides of an input must be for a graph with ``rewritten`` upsamplings
    replaced to give the original's output: each doubles exactly only on an even map."""
    return 2 ** rewritten
