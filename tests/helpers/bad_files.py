"""The table of bad and unusual files that every entry point must survive (issue 6).

Each builder writes one file into a folder and returns its path. ``IMAGE_CASES``,
``VIDEO_CASES``, ``MODEL_CASES`` and ``CHECKPOINT_CASES`` map a case name to
``(builder, expected)``: ``expected`` is None when the file must work, else a piece of
the one-line message that must name the problem.
"""

from __future__ import annotations

import pickle
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np


def photo(h: int = 96, w: int = 128) -> np.ndarray:
    """A BGR test picture with structure (gradients and a disc), not a flat colour."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) % 64 * 4], -1).astype(np.uint8)
    cv2.circle(img, (w // 2, h // 2), min(h, w) // 4, (30, 200, 240), -1)
    return img


def _png_bytes(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def png_bomb(path: Path, w: int = 20000, h: int = 20000) -> Path:
    """A valid grey PNG of w x h zeros: about 400 kB on disk, 400 MB decoded (1.2 GB as RGB)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    z = zlib.compressobj(9)
    row = b"\x00" * (w + 1)  # filter byte + pixels
    body = b"".join(z.compress(row) for _ in range(h)) + z.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def _write(name: str, make: Callable[[Path], None]) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = folder / name
        make(path)
        return path
    return build


def _corrupt_png(path: Path) -> None:
    data = bytearray(_png_bytes(photo()))
    data[200:400] = bytes(200)  # inside the pixel data: checksums and filters break
    path.write_bytes(bytes(data))


def _cmyk_jpeg(path: Path) -> None:
    from PIL import Image

    Image.fromarray(photo()[..., ::-1]).convert("CMYK").save(path)


IMAGE_CASES: dict[str, tuple[Callable[[Path], Path], str | None]] = {
    "empty": (_write("empty.jpg", lambda p: p.write_bytes(b"")), "file is empty"),
    "truncated": (_write("truncated.png", lambda p: p.write_bytes(_png_bytes(photo())[:3000])), "not a readable image"),
    "corrupt": (_write("corrupt.png", _corrupt_png), "not a readable image"),
    "text_as_jpg": (_write("notes.jpg", lambda p: p.write_text("my shopping list, not a photo")), "not a readable image"),
    "bomb": (_write("bomb.png", png_bomb), "too large"),
    "one_pixel": (_write("one.png", lambda p: cv2.imwrite(str(p), photo()[:1, :1])), None),
    "grey": (_write("grey.png", lambda p: cv2.imwrite(str(p), cv2.cvtColor(photo(), cv2.COLOR_BGR2GRAY))), None),
    "rgba": (_write("rgba.png", lambda p: cv2.imwrite(str(p), cv2.cvtColor(photo(), cv2.COLOR_BGR2BGRA))), None),
    "16bit": (_write("sixteen.png", lambda p: cv2.imwrite(str(p), photo().astype(np.uint16) * 257)), None),
    "cmyk": (_write("cmyk.jpg", _cmyk_jpeg), None),
}


def write_clip(path: Path, frames: int = 12, size: tuple[int, int] = (64, 48)) -> Path:
    """A small moving MP4 (mp4v) written with OpenCV."""
    w, h = size
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (w, h))
    base = photo(h, w)
    for i in range(frames):
        out.write(np.roll(base, 3 * i, axis=1))
    out.release()
    return path


def _truncated_clip(path: Path) -> None:
    write_clip(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # the index (moov) is at the end


def _corrupt_clip(path: Path) -> None:
    write_clip(path, frames=30)
    data = bytearray(path.read_bytes())
    data[len(data) // 4: len(data) // 4 + 300] = bytes(300)  # frame data zeroed; the index (at the end) survives
    path.write_bytes(bytes(data))


# "corrupt" may decode with damaged frames (exit 0) or be refused (exit 2): either, never a traceback.
VIDEO_CASES: dict[str, tuple[Callable[[Path], Path], str | None]] = {
    "empty": (_write("empty.mp4", lambda p: p.write_bytes(b"")), "file is empty"),
    "truncated": (_write("truncated.mp4", _truncated_clip), "cannot open this video"),
    "corrupt": (_write("corrupt.mp4", _corrupt_clip), "?"),
    "text_as_mp4": (_write("notes.mp4", lambda p: p.write_text("not a video")), "cannot open this video"),
}


def _onnx_model(path: Path, input_shape: list) -> None:
    """An ONNX identity model with one input 'image' of the given shape, output 'stylized'."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, input_shape)
    y = helper.make_tensor_value_info("stylized", TensorProto.FLOAT, input_shape)
    graph = helper.make_graph([helper.make_node("Identity", ["image"], ["stylized"])], "wrong", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def _truncated_model(path: Path) -> None:
    from models import catalogue

    path.write_bytes(catalogue.model_path().read_bytes()[:5000])


MODEL_CASES: dict[str, tuple[Callable[[Path], Path], str | None]] = {
    "empty": (_write("empty.onnx", lambda p: p.write_bytes(b"")), "not a loadable ONNX model"),
    "not_onnx": (_write("notes.onnx", lambda p: p.write_text("not a model")), "not a loadable ONNX model"),
    "truncated": (_write("truncated.onnx", _truncated_model), "not a loadable ONNX model"),
    "wrong_rank": (_write("rank2.onnx", lambda p: _onnx_model(p, [1, 3])), "not a style model of this project"),
    "wrong_channels": (_write("grey.onnx", lambda p: _onnx_model(p, [1, 1, "h", "w"])), "not a style model of this project"),
}


class _RunsCode:
    """Unpickling this would call ``exec``: a checkpoint must never be loaded that way."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


def _pickle_with_code(path: Path) -> None:
    marker = path.with_name("CODE_RAN")
    path.write_bytes(pickle.dumps({"format": "stylelens-checkpoint-1", "step": 1, "model": _RunsCode(marker),
                                   "config": {}}, protocol=2))


def _state_dict_only(path: Path) -> None:
    import torch

    torch.save({"conv.weight": torch.zeros(3, 3, 3, 3)}, path)


def other_architecture(real_checkpoint: Path, path: Path) -> Path:
    """A real checkpoint whose weights are relabelled as the other architecture."""
    import torch

    ckpt = torch.load(real_checkpoint, weights_only=True)
    from models.style_net import arch_config

    other = "johnson" if ckpt["config"]["arch"] == "lite" else "lite"
    ckpt["config"] = {**ckpt["config"], "arch": other, "net": arch_config(other).to_dict()}
    torch.save(ckpt, path)
    return path


def truncated_checkpoint(real_checkpoint: Path, path: Path) -> Path:
    path.write_bytes(real_checkpoint.read_bytes()[: real_checkpoint.stat().st_size // 2])
    return path


# Builders that need no real checkpoint; other_architecture and truncated_checkpoint take one.
CHECKPOINT_CASES: dict[str, tuple[Callable[[Path], Path], str | None]] = {
    "text": (_write("notes.pt", lambda p: p.write_text("not a checkpoint")), "not a loadable checkpoint"),
    "pickle_runs_code": (_write("evil.pt", _pickle_with_code), "not a loadable checkpoint"),
    "foreign_state_dict": (_write("foreign.pt", _state_dict_only), "not a checkpoint of this project"),
}
