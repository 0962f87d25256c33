"""Temporal stability for stylised video, without training data, and its measure.

Per-frame stylisation flickers: tiny changes of the input change the strokes. The
:class:`FlowStabilizer` warps the previous output to the current frame with optical
flow (OpenCV's DIS, computed on the inputs) and blends it with the new stylised frame,
trusting the warp only where the warped previous input matches the current one
(occlusions and new content take the new frame). :func:`warping_error` is the flicker
metric of Lai et al. 2018: the mean squared difference between an output frame and the
previous output warped to it, over pixels that are visible in both.
"""

from __future__ import annotations

import cv2
import numpy as np

FLOW_WIDTH = 320  # flow is computed at this width: fast, and enough for the motion of a webcam


def _grey(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    s = min(1.0, FLOW_WIDTH / w)
    g = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    return g if s == 1.0 else cv2.resize(g, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)


def backward_flow(dis: cv2.DISOpticalFlow, current: np.ndarray, previous: np.ndarray,
                  size: tuple[int, int]) -> np.ndarray:
    """Flow (H, W, 2) at ``size`` (w, h): for each pixel of ``current``, where it was in ``previous``."""
    return _enlarge_flow(dis.calc(_grey(current), _grey(previous), None), size)


def _enlarge_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A flow computed at :data:`FLOW_WIDTH` resized to ``size`` (w, h), its vectors scaled with it."""
    w, h = size
    s = w / flow.shape[1]
    return flow if s == 1.0 else cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR) * s


_GRIDS: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (x, y) of an h x w image, made once per size."""
    if (h, w) not in _GRIDS:
        _GRIDS[(h, w)] = tuple(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)))
    return _GRIDS[(h, w)]


def warp_maps(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``flow`` as OpenCV's fixed-point remap maps: made once, they warp several images faster."""
    gx, gy = _grid(*flow.shape[:2])
    return cv2.convertMaps(gx + flow[..., 0], gy + flow[..., 1], cv2.CV_16SC2)


def warp(image: np.ndarray, flow: np.ndarray | tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Sample ``image`` at each pixel's position plus ``flow`` (a flow field, or its :func:`warp_maps`)."""
    map1, map2 = flow if isinstance(flow, tuple) else warp_maps(flow)
    return cv2.remap(image, map1, map2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def new_dis() -> cv2.DISOpticalFlow:
    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)


class FlowStabilizer:
    """Blend each stylised frame with the previous output warped by optical flow.

    ``feedback`` is the weight of the warped previous output where the warp is trusted;
    ``tolerance`` (grey levels) sets how fast trust falls with the input mismatch. The flow and
    the mismatch are computed on the grey frames at :data:`FLOW_WIDTH`; only the previous
    output is warped at full size.
    """

    def __init__(self, feedback: float = 0.7, tolerance: float = 12.0):
        self.feedback = feedback
        self.tolerance = tolerance
        self.dis = new_dis()
        # weight of the warped previous output for each input mismatch 0..255 (grey levels)
        self._trust = (feedback * np.exp(-(np.arange(256, dtype=np.float32) / tolerance) ** 2)).astype(np.float32)
        self.reset()

    def reset(self) -> None:
        self.prev_grey: np.ndarray | None = None  # the previous input, grey at the flow's size
        self.prev_shape: tuple[int, ...] | None = None
        self.prev_out: np.ndarray | None = None

    def __call__(self, frame: np.ndarray, stylised: np.ndarray) -> np.ndarray:
        small = min(frame.shape[:2]) * min(1.0, FLOW_WIDTH / frame.shape[1]) < 12  # too small for DIS
        grey = None if small else _grey(frame)
        if small or self.prev_grey is None or self.prev_shape != frame.shape or self.prev_out.shape != stylised.shape:
            out = stylised
        else:
            h, w = frame.shape[:2]
            flow = self.dis.calc(grey, self.prev_grey, None)  # backward: where each pixel was before
            # The input mismatch after the warp, in grey levels at the flow's size (a quarter of
            # the pixels of 640x480; its noise averaged over 2x2), then the trust in the warp by
            # table, enlarged, and a per-pixel blend in OpenCV: a few milliseconds at 640x480.
            err = cv2.absdiff(grey, warp(self.prev_grey, flow))
            alpha = cv2.LUT(err, self._trust)
            if alpha.shape != (h, w):
                alpha = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR)
            warped_out = warp(self.prev_out, _enlarge_flow(flow, (w, h)))
            out = cv2.blendLinear(warped_out, stylised, alpha, 1 - alpha)
        self.prev_grey, self.prev_shape, self.prev_out = grey, frame.shape, out
        return out


def warping_error(inputs: list[np.ndarray], outputs: list[np.ndarray],
                  flows: list[np.ndarray] | None = None, occlusion_tolerance: float = 20.0) -> float:
    """Mean squared warping error of ``outputs`` (values in [0, 1] units), Lai et al. 2018.

    ``flows[t]`` maps frame t+1 to frame t (backward flow); when absent it is estimated
    from the inputs with DIS. Pixels whose warped input differs by more than
    ``occlusion_tolerance`` grey levels are treated as occluded and left out.
    """
    dis = new_dis()
    total, count = 0.0, 0
    for t in range(1, len(outputs)):
        h, w = inputs[t].shape[:2]
        flow = flows[t - 1] if flows is not None else backward_flow(dis, inputs[t], inputs[t - 1], (w, h))
        maps = warp_maps(flow)  # one set of maps for the input and the output
        warped_in = warp(inputs[t - 1], maps).astype(np.float32)
        visible = np.abs(inputs[t].astype(np.float32) - warped_in).mean(axis=2) < occlusion_tolerance
        diff = (outputs[t].astype(np.float32) - warp(outputs[t - 1], maps).astype(np.float32)) / 255.0
        total += float((diff ** 2).mean(axis=2)[visible].sum())
        count += int(visible.sum())
    return total / max(count, 1)
