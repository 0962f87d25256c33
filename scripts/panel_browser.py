"""The panel in headless Chromium: the README's screenshots, and the webcam tab's frame rate.

    python scripts/panel_browser.py screenshots --out docs/
    python scripts/panel_browser.py webcam-fps --seconds 20 [--compare /path/to/other/checkout]

``screenshots`` serves the panel with a throw-away style folder, stylises the bundled photo
with a shipped painting (docs/panel_fast_style.png), then starts a training from the
"Your painting" tab and shoots it mid-run with its first preview (docs/panel_training.png),
and cancels it. ``webcam-fps`` streams Chromium's fake camera at 640x480 through the Webcam
tab and prints the frames per second shown and the gaps between them; ``--compare`` measures
another checkout (e.g. the main branch) first, in the same run, on the same machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import catalogue  # noqa: E402
from tests.helpers import web  # noqa: E402
from tests.helpers.panel_server import panel_process  # noqa: E402


def screenshots(out: Path, train_steps: int) -> None:
    from selenium.webdriver.common.by import By

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="stylelens-shots-") as tmp:
        tmp = Path(tmp)
        args = ["--styles-dir", str(tmp / "styles"), "--train-steps", str(train_steps)]
        with panel_process(tmp / "panel", args) as panel:
            drv = web.start_chromium(tmp / "chromium", 1400, 1400)
            try:
                drv.get(panel.url)
                web.click_picker_tile(drv, "udnie")
                web.wait(drv, lambda d: web.image_src(d, "style-output"), 180)
                time.sleep(2)
                drv.save_screenshot(str(out / "panel_fast_style.png"))
                print(f"wrote {out / 'panel_fast_style.png'}")

                web.open_tab(drv, "Your painting")
                field = web.wait(drv, lambda d: d.find_element(By.CSS_SELECTOR, "#train-painting input[type=file]"))
                field.send_keys(str(catalogue.SHIPPED_DIR / "the_scream.jpg"))
                drv.find_element(By.CSS_SELECTOR, "#train-name textarea, #train-name input").send_keys("my_scream")
                time.sleep(1)
                drv.find_element(By.ID, "train-run").click()
                web.wait(drv, lambda d: web.image_src(d, "train-preview"), 1800)
                time.sleep(2)
                drv.save_screenshot(str(out / "panel_training.png"))
                print(f"wrote {out / 'panel_training.png'}")
                drv.find_element(By.ID, "train-cancel").click()
                web.wait(drv, lambda d: 'data-state="cancelled"' in d.page_source, 120)
            finally:
                drv.quit()


def webcam_fps(seconds: float, roots: list[Path | None]) -> None:
    for root in roots:
        with tempfile.TemporaryDirectory(prefix="stylelens-fps-") as tmp:
            tmp = Path(tmp)
            with panel_process(tmp / "panel", root=root) as panel:
                drv = web.start_chromium(tmp / "chromium")
                try:
                    drv.get(panel.url)
                    web.open_tab(drv, "Fast style")
                    try:
                        web.open_tab(drv, "Webcam")
                    except Exception:  # an older page: the webcam is on the Fast style tab itself
                        pass
                    web.start_webcam(drv)
                    time.sleep(3)  # warm-up
                    r = web.measure_stream(drv, seconds)
                finally:
                    drv.quit()
        label = str(root) if root else "this checkout"
        print(f"{label}: {r['fps']:.1f} frames/s shown over {r['seconds']:.1f} s ({r['frames']} frames); "
              f"gap between frames median {r.get('gap_ms_median', 0):.0f} ms, p95 {r.get('gap_ms_p95', 0):.0f} ms",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("screenshots")
    s.add_argument("--out", type=Path, default=Path("docs"))
    s.add_argument("--train-steps", type=int, default=1000,
                   help="steps of the training shot mid-run (its first preview comes at a tenth, at most 100)")
    f = sub.add_parser("webcam-fps")
    f.add_argument("--seconds", type=float, default=20.0)
    f.add_argument("--compare", type=Path, help="another checkout of the project, measured first")
    args = ap.parse_args()
    if not web.chromium_available():
        raise SystemExit("error: needs Debian's chromium and chromium-driver")
    if args.command == "screenshots":
        screenshots(args.out, args.train_steps)
    else:
        webcam_fps(args.seconds, [args.compare, None] if args.compare else [None])


if __name__ == "__main__":
    main()
