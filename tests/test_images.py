"""The one image conversion helper: every kind of file a user may give."""

import cv2
import numpy as np
import pytest

from models.common.errors import InputFileError
from models.common.images import read_rgb, write_rgb


def _exif_jpeg(path, orientation: int):
    """A 80x40 JPEG whose EXIF says to rotate it by 90 degrees (orientation 6)."""
    ok, buf = cv2.imencode(".jpg", np.zeros((40, 80, 3), np.uint8))
    data = buf.tobytes()
    # APP1 Exif segment with one IFD entry: tag 0x0112 (orientation), SHORT, count 1.
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + b"\x00\x01" + b"\x01\x12\x00\x03\x00\x00\x00\x01" + \
        orientation.to_bytes(2, "big") + b"\x00\x00" + b"\x00\x00\x00\x00"
    app1 = b"Exif\x00\x00" + tiff
    segment = b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1
    path.write_bytes(data[:2] + segment + data[2:])


def test_exif_orientation_is_applied(tmp_path):
    _exif_jpeg(tmp_path / "phone.jpg", 6)
    assert read_rgb(tmp_path / "phone.jpg").shape == (80, 40, 3)


@pytest.mark.parametrize("kind", ["grey", "rgba", "16bit"])
def test_unusual_formats_become_rgb8(tmp_path, kind):
    img = {"grey": np.full((10, 12), 200, np.uint8), "rgba": np.full((10, 12, 4), 200, np.uint8),
           "16bit": np.full((10, 12, 3), 200 * 257, np.uint16)}[kind]
    cv2.imwrite(str(tmp_path / "x.png"), img)
    out = read_rgb(tmp_path / "x.png")
    assert out.shape == (10, 12, 3) and out.dtype == np.uint8 and abs(int(out.mean()) - 200) <= 1


@pytest.mark.parametrize("content, problem", [(b"", "empty"), (b"hello, I am text", "not a readable image"),
                                              (None, "not a readable image")])
def test_bad_files_are_named(tmp_path, content, problem):
    path = tmp_path / "photo.jpg"
    if content is None:  # truncated
        ok, buf = cv2.imencode(".png", np.zeros((50, 50, 3), np.uint8))
        content = buf.tobytes()[:40]
        path = tmp_path / "photo.png"
    path.write_bytes(content)
    with pytest.raises(InputFileError, match=problem) as err:
        read_rgb(path)
    assert str(path) in str(err.value)


def test_write_is_atomic_and_checks_the_suffix(tmp_path):
    img = np.zeros((4, 4, 3), np.uint8)
    write_rgb(tmp_path / "a" / "b.png", img)
    assert (read_rgb(tmp_path / "a" / "b.png") == img).all()
    with pytest.raises(InputFileError, match="suffix"):
        write_rgb(tmp_path / "c.txt", img)
    (tmp_path / "d.png").mkdir()
    with pytest.raises(InputFileError, match="folder"):
        write_rgb(tmp_path / "d.png", img)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b.png", "d.png"]


def test_float_frames_become_uint8_clipped_rounded_and_in_channel_order():
    from models.common.images import nchw_to_bgr, nchw_to_rgb

    x = np.zeros((1, 3, 2, 4), np.float32)
    x[0, 0] = [[-0.5, 0.0, 0.5, 1.0], [1.5, np.inf, -np.inf, 100.0]]  # R
    x[0, 1] = 0.2  # G
    x[0, 2] = 0.999  # B
    rgb = nchw_to_rgb(x)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 4, 3)
    assert rgb[..., 0].tolist() == [[0, 0, 128, 255], [255, 255, 0, 255]]
    assert (rgb[..., 1] == 51).all() and (rgb[..., 2] == 255).all()
    assert (nchw_to_bgr(x) == rgb[..., ::-1]).all()
    wide = np.random.default_rng(0).random((1, 3, 6, 10)).astype(np.float32)
    crop = wide[..., 1:5, 2:9]  # not contiguous
    expected = (np.clip(crop[0].transpose(1, 2, 0), 0, 1) * 255 + 0.5).astype(np.uint8)
    assert np.abs(nchw_to_rgb(crop).astype(int) - expected).max() <= 1
