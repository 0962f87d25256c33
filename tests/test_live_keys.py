"""The live keys of the style effect: strength and colour (as --strength and --preserve-color), and
``n``/``p`` through the shipped models and the user's own, on real shipped models and live runs."""

import json
import shutil

import cv2
import numpy as np
import pytest

from models import catalogue
from models.common.paths import STYLES_DIR_ENV
from realtime.effects import EffectOptions
from realtime.runner import Runner
from realtime.sinks import Sink
from realtime.sources import Source

W, H = 64, 48


def _photo() -> np.ndarray:
    return cv2.resize(cv2.imread(str(catalogue.SAMPLE_PHOTO)), (W, H), interpolation=cv2.INTER_AREA)


class _Still(Source):
    """The same small photo, frame after frame, as a camera pointed at a still scene."""

    fps = 60.0

    def __init__(self, frames: int = 400):
        self.image, self.left = _photo(), frames

    def read(self):
        self.left -= 1
        return self.image.copy() if self.left >= 0 else None


class _Keyboard(Sink):
    """Keeps each frame with the status at that moment and presses ``keys[i]`` after frame i."""

    live = True

    def __init__(self, keys: dict[int, str]):
        self.keys, self.frames, self.status = keys, [], []
        self.runner: Runner | None = None

    def write(self, frame):
        self.frames.append(frame)
        self.status.append(self.runner.effect.status())
        key = self.keys.get(len(self.frames) - 1)
        return ord(key) if key else None


@pytest.fixture(autouse=True)
def own_styles(tmp_path, monkeypatch):
    """An empty folder of the user's own styles, so the user's real one plays no part."""
    folder = tmp_path / "my_styles"
    monkeypatch.setenv(STYLES_DIR_ENV, str(folder))
    return folder


def _live(keys: dict[int, str], frames: int, **options) -> tuple[Runner, _Keyboard, list[str]]:
    """A live run (frames dropped when late, the adaptive controller on) of ``frames`` output frames."""
    sink, log = _Keyboard(keys), []
    runner = Runner(_Still(), [sink], effect="style", stabilize=False, hud=False, max_frames=frames,
                    log=log.append, target_fps=15,
                    options=EffectOptions(provider="cpu", backend="onnxruntime", **options))
    sink.runner = runner
    runner.run()
    return runner, sink, log


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(float) - b.astype(float)).mean())


def test_strength_keys_fade_the_style_to_the_frame_and_back():
    photo = _photo()
    presses = {i: "-" for i in range(2, 12)} | {i: "=" for i in range(20, 23)}
    runner, sink, _ = _live(presses, 32)
    assert _diff(sink.frames[0], photo) > 10  # the full style
    assert sink.status[12].endswith("strength 0%") and sink.status[19].endswith("strength 0%")
    assert max(_diff(f, photo) for f in sink.frames[16:20]) < 1  # the frame itself (frames in flight have left)
    np.testing.assert_allclose(sink.frames[19], photo, atol=2)
    assert sink.status[-1].endswith("strength 30%")
    partial = _diff(sink.frames[-1], photo)
    assert 1 < partial < _diff(sink.frames[0], photo)
    for _ in range(12):  # + does what = does; the strength stays within 0..1
        runner.on_key(ord("+"))
    assert runner.effect.strength == 1.0


def _chroma_gap(out: np.ndarray, photo: np.ndarray) -> float:
    a, b = (cv2.cvtColor(x, cv2.COLOR_BGR2YCrCb)[..., 1:].astype(float) for x in (out, photo))
    return float(np.abs(a - b).mean())


def test_colour_key_keeps_the_frames_colours_and_gives_them_back():
    photo = _photo()
    runner, sink, _ = _live({3: "c", 12: "c"}, 20, model="udnie_lite")
    assert "colour kept" not in sink.status[0] and sink.status[4].endswith("strength 100%, colour kept")
    styled, kept, again = sink.frames[1], sink.frames[10], sink.frames[-1]
    assert _chroma_gap(kept, photo) < 0.5 * _chroma_gap(styled, photo)
    assert _diff(kept, photo) > 5  # still the style's strokes, in the photo's colours
    assert _chroma_gap(again, photo) > 0.8 * _chroma_gap(styled, photo)
    assert "colour kept" not in sink.status[-1]


def test_keys_of_the_style_alone_leave_other_effects_as_they_are():
    runner = Runner(_Still(), [], effect="none", stabilize=False)
    for key in "-+=c":
        runner.on_key(ord(key))
    assert np.array_equal(runner.effect(_photo()), _photo())


def test_n_moves_past_a_one_style_model_to_the_next_one_and_p_comes_back_live():
    photo = _photo()
    runner, sink, log = _live({4: "n", 14: "p"}, 24, model="wave_lite")
    order = [m.name for m in catalogue.entries() if m.origin == "shipped"]
    after = order[order.index("wave_lite") + 1]
    style_after = catalogue.entries()[order.index(after)].style_names[0]
    assert sink.status[0].startswith("style: wave 100%")
    assert sink.status[5].startswith(f"style: {style_after} 100%")
    assert log.count(f"style: {style_after} ({after})") == 1 and log.count("style: wave (wave_lite)") == 1
    wave, other, back = sink.frames[3], sink.frames[12], sink.frames[-1]
    assert _diff(wave, other) > 10 and _diff(wave, other) > 3 * _diff(wave, back)
    assert _diff(other, photo) > 10
    # the model that came in was prepared anew: the controller moves it, and the summary names it
    assert runner.adapter is not None and runner.adapter.effect is runner.effect
    assert runner.effect.path.stem == "wave_lite" and "wave_lite" in runner.effect.describe()


def test_n_steps_through_a_multi_style_model_then_on_to_the_next_model():
    runner = Runner(_Still(), [], effect="style", stabilize=False,
                    options=EffectOptions(provider="cpu", backend="onnxruntime", model="five_styles_lite"))
    fx = runner.effect
    styles = list(fx.model.styles)
    assert len(styles) > 1
    seen = [fx.status()]
    for _ in styles:
        runner.on_key(ord("n"))
        seen.append(fx.status())
    assert [s.split(" ")[1] for s in seen[:len(styles)]] == styles
    assert fx.path.stem != "five_styles_lite"  # past the last style: the next model
    runner.on_key(ord("p"))  # back to the multi-style model, at its last style
    assert fx.path.stem == "five_styles_lite" and fx.status().startswith(f"style: {styles[-1]} 100%")
    assert runner.effect is fx  # the same effect all along, with the sessions it opened


def test_cycling_reaches_the_users_own_style(own_styles):
    own_styles.mkdir()
    shutil.copy(catalogue.model_path("udnie_lite"), own_styles / "my_udnie.onnx")
    (own_styles / "manifest.json").write_text(json.dumps(
        {"models": [{"name": "my_udnie", "file": "my_udnie.onnx", "styles": [{"name": "udnie"}]}]}))
    log = []
    runner = Runner(_Still(), [], effect="style", stabilize=False, log=log.append,
                    options=EffectOptions(provider="cpu", backend="onnxruntime"))
    fx, first = runner.effect, runner.effect.path
    names = []
    while len(names) < 50 and fx.path.resolve() != first.resolve() or not names:  # round the whole catalogue
        runner.on_key(ord("n"))
        names.append(fx.path.stem)
    assert "my_udnie" in names and "style: udnie (my_udnie)" in log
    assert names[-1] == first.stem and len(names) < 50
    assert "starry_night_tiny" not in names  # a smaller sibling is the ladder's, not a style of its own
    runner.on_key(ord("p"))
    assert fx.path == (own_styles / "my_udnie.onnx").resolve()
    out = fx(_photo())
    assert out.shape == (H, W, 3) and _diff(out, _photo()) > 10


@pytest.mark.parametrize("inside", [False, True])
def test_a_model_file_of_the_users_own_keeps_to_its_styles(tmp_path, inside):
    path = catalogue.model_path("wave_lite") if inside else tmp_path / "mine.onnx"
    if not inside:
        shutil.copy(catalogue.model_path("wave_lite"), path)
    log = []
    runner = Runner(_Still(), [], effect="style", stabilize=False, log=log.append,
                    options=EffectOptions(provider="cpu", backend="onnxruntime", model=str(path)))
    before = runner.effect(_photo())
    runner.on_key(ord("n"))
    runner.on_key(ord("n"))
    runner.on_key(ord("p"))
    if inside:  # a shipped file named by its path is in the catalogue: it cycles on
        assert runner.effect.path.stem != "wave_lite" and len(log) == 3
    else:
        assert runner.effect.path == path and log == []
        assert np.array_equal(runner.effect(_photo()), before)


def test_the_help_lists_exactly_the_keys_the_window_answers_to():
    # The key list of --help is written by hand; a key added to KEYS (or dropped) must show there.
    from realtime.__main__ import EPILOG
    from realtime.runner import KEYS

    section = EPILOG.split("keys (in the window):", 1)[1].split("\n\n", 1)[0]
    listed = {t.strip(",()") for t in section.split() if len(t.strip(",()")) == 1} - {"a", "/"}
    assert listed == set(KEYS)
    assert "Esc" in section  # q's twin, handled apart from KEYS (key code 27)
