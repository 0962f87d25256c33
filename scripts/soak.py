"""Long-run soak: steady memory and latency over many frames and requests, with faults injected.

    python scripts/soak.py runner [--frames 20000] [--effect style] [--size 320x240]
    python scripts/soak.py panel [--requests 50]
    python scripts/soak.py all --json soak.json

``runner`` drives the live runner with a synthetic camera (the demo clip, unpaced, as a
live source: old frames are dropped as with a real camera). Faults are injected on a
schedule: the camera goes away (it stops giving frames and its first reopen fails) and
it changes resolution mid-stream. It prints resident memory and recent latency every
``--report-every`` frames, then the figures: frames, memory growth after warm-up,
latency drift (median of the last quarter of windows minus the first quarter),
faults injected and survived.

``panel`` serves ``python -m realtime.panel`` on 127.0.0.1 as a user would, sends
requests in a row from ``gradio_client`` (fast style, saliency, filters), with a bad
upload (a text file named .jpg) every ``--bad-every`` requests, after
``--panel-warmup`` requests that fill its caches, and reports the
server's memory growth, request times, requests served and faults survived.

The exit code is 1 when a limit is broken (memory growth over ``--max-growth-mb``,
latency drift over ``--max-drift-ms``, a fault not survived), so the figures can be
re-measured and checked in one command.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process, MB (VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024


# The runner -------------------------------------------------------------------------------

def runner_soak(frames: int, effect: str, size: tuple[int, int], camera_fps: float, outage_every: int,
                resize_every: int, report_every: int, warmup: int, log=print) -> dict:
    """Run ``frames`` output frames through the live runner; returns the figures."""
    from realtime.effects import EffectOptions
    from realtime.runner import Runner
    from realtime.sinks import Sink
    from realtime.sources import DemoSource, LatestFrameGrabber, Source

    LatestFrameGrabber.BACKOFF = (0.05, 0.2)  # a synthetic camera comes back at once: keep outages short

    class SyntheticCamera(Source):
        """The demo clip as a live camera, with scheduled outages and resolution changes."""

        live, name = True, "synthetic camera"

        def __init__(self):
            self.fps, self.next_time = camera_fps, time.perf_counter()
            self.full = DemoSource(size, noise=3.0)
            self.half = DemoSource((size[0] // 2, size[1] // 2), noise=3.0)
            self.i = 0
            self.away = False
            self.reopen_failures = 0
            self.outages = self.resolution_changes = 0

        def read(self):
            if self.away:
                return None
            self.next_time = max(self.next_time + 1 / self.fps, time.perf_counter() - 1.0)
            time.sleep(max(0.0, self.next_time - time.perf_counter()))  # a camera delivers at its own pace
            self.i += 1
            if outage_every and self.i % outage_every == 0:
                self.away, self.outages = True, self.outages + 1
                return None
            small = bool(resize_every) and (self.i // resize_every) % 2 == 1
            if resize_every and self.i % resize_every == 0:
                self.resolution_changes += 1
            return (self.half if small else self.full).read()

        def reopen(self):
            if self.reopen_failures < self.outages:  # the first try after each outage fails
                self.reopen_failures += 1
                return False
            self.away = False
            return True

    class Probe(Sink):
        """Counts frames and samples memory and recent latency as the run goes."""

        def __init__(self):
            self.frames = 0
            self.sizes: set[tuple[int, int]] = set()
            self.samples: list[dict] = []
            self.runner: Runner | None = None
            self.t0 = time.perf_counter()

        def write(self, frame):
            self.frames += 1
            self.sizes.add(frame.shape[:2])
            if self.frames % report_every == 0 and self.runner.stats.latencies:
                recent = list(self.runner.stats.latencies)[-report_every // 2:]
                sample = {"frames": self.frames, "rss_mb": rss_mb(), "latency_ms": 1000 * statistics.mean(recent),
                          "fps": report_every / (time.perf_counter() - self.t0)}
                self.t0 = time.perf_counter()
                self.samples.append(sample)
                log(f"  {sample['frames']:>7} frames  {sample['rss_mb']:7.1f} MB  latency {sample['latency_ms']:6.1f} ms"
                    f"  {sample['fps']:6.1f} FPS")
            return None

    camera, probe = SyntheticCamera(), Probe()
    options = EffectOptions(size=None)
    runner = Runner(camera, [probe], effect=effect, options=options, hud=True, max_frames=frames,
                    reconnect_timeout=10.0, log=lambda m: None)
    probe.runner = runner
    log(f"runner soak: {frames} frames, effect {effect}, camera {size[0]}x{size[1]} at {camera_fps:g} FPS (half size "
        f"on every other {resize_every} frames), camera lost every {outage_every} frames")
    t = time.perf_counter()
    summary = runner.run()
    seconds = time.perf_counter() - t
    after_warmup = [s for s in probe.samples if s["frames"] > warmup] or probe.samples
    quarter = max(1, len(after_warmup) // 4)  # medians of the first and last quarters: one slow window is noise
    first = {k: statistics.median(s[k] for s in after_warmup[:quarter]) for k in ("rss_mb", "latency_ms")}
    last = {k: statistics.median(s[k] for s in after_warmup[-quarter:]) for k in ("rss_mb", "latency_ms")}
    first["rss_mb"], last["rss_mb"] = after_warmup[0]["rss_mb"], after_warmup[-1]["rss_mb"]
    survived = (runner.lost is None and summary["frames_out"] == frames
                and summary["reconnects"] == camera.outages
                and (not camera.resolution_changes or len(probe.sizes) == 2))
    return {"frames": summary["frames_out"], "frames_captured": summary["frames_in"], "dropped": summary["dropped"],
            "seconds": seconds, "fps": summary["frames_out"] / seconds,
            "memory_start_mb": first["rss_mb"], "memory_end_mb": last["rss_mb"],
            "memory_growth_mb": last["rss_mb"] - first["rss_mb"],
            "latency_first_ms": first["latency_ms"], "latency_last_ms": last["latency_ms"],
            "latency_drift_ms": last["latency_ms"] - first["latency_ms"],
            "faults_injected": camera.outages + camera.resolution_changes,
            "faults_survived": (summary["reconnects"] + camera.resolution_changes) if survived else 0,
            "outages": camera.outages, "reconnects": summary["reconnects"],
            "resolution_changes": camera.resolution_changes, "samples": probe.samples}


# The panel --------------------------------------------------------------------------------

def panel_soak(requests: int, bad_every: int, warmup: int, log=print) -> dict:
    """Serve the panel and send ``requests`` requests in a row; returns the figures."""
    import shutil

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' panel helpers
    from tests.helpers.panel_server import PanelStartError, panel_process

    work = Path(tempfile.mkdtemp(prefix="stylelens-soak-"))
    try:
        with panel_process(work) as server:
            return _drive_panel(server, work, requests, bad_every, warmup, log)
    except PanelStartError as e:  # the message holds its log
        raise SystemExit(str(e)) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _drive_panel(server, work: Path, requests: int, bad_every: int, warmup: int, log) -> dict:
    import cv2
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    from models import catalogue
    from realtime.sources import DemoSource

    client = Client(server.url, verbose=False, download_files=str(work / "downloads"))
    photo = work / "photo.jpg"
    cv2.imwrite(str(photo), DemoSource((320, 240), noise=3.0).read())
    bad = work / "holiday.jpg"
    bad.write_text("not a photo")
    style = catalogue.default_model().name
    calls = [
        ("fast_style", lambda: client.predict(handle_file(str(photo)), style, "", api_name="/fast_style")),
        ("saliency", lambda: client.predict("efficientnet_lite0", handle_file(str(photo)), "", 0,
                                            api_name="/saliency")),
        ("filters", lambda: client.predict("efficientnet_lite0", "stem", api_name="/filters")),
    ]
    times: dict[str, list[float]] = {name: [] for name, _ in calls}
    served = injected = survived = 0
    memory: list[float] = []
    log(f"panel soak: {requests} requests to {server.url} (server pid {server.pid}), a bad upload every {bad_every}")
    for i in range(warmup):  # every endpoint's first calls build caches: not counted
        calls[i % len(calls)][1]()
    memory.append(rss_mb(server.pid))
    log(f"  after {warmup} warm-up requests: server {memory[-1]:7.1f} MB")
    for i in range(requests):
        if bad_every and i % bad_every == bad_every - 1:
            injected += 1
            try:
                client.predict(handle_file(str(bad)), style, "", api_name="/fast_style")
            except AppError as e:
                if "holiday.jpg" in str(e) and server.alive():
                    survived += 1
            continue
        name, call = calls[i % len(calls)]
        t = time.perf_counter()
        call()
        times[name].append(time.perf_counter() - t)
        served += 1
        memory.append(rss_mb(server.pid))
        if served % 5 == 0:
            log(f"  {served:>4} served  server {memory[-1]:7.1f} MB")
    base = memory[0]
    return {"requests_served": served, "faults_injected": injected, "faults_survived": survived,
            "memory_start_mb": base, "memory_end_mb": memory[-1], "memory_growth_mb": memory[-1] - base,
            "seconds_per_request": {k: statistics.median(v) for k, v in times.items() if v},
            "server_alive": server.alive()}


# Command line -----------------------------------------------------------------------------

def _size(text: str) -> tuple[int, int]:
    w, h = (int(v) for v in text.lower().split("x"))
    return w, h


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("runner", "panel", "all"), help="what to soak")
    ap.add_argument("--frames", type=int, default=20000, help="runner: output frames")
    ap.add_argument("--effect", default="style", help="runner: effect (default: style, the shipped default model)")
    ap.add_argument("--size", type=_size, default=(320, 240), help="runner: camera size WxH (default: 320x240)")
    ap.add_argument("--camera-fps", type=float, default=60.0, help="runner: frames per second the camera delivers")
    ap.add_argument("--outage-every", type=int, default=2500,
                    help="runner: the camera goes away every N captured frames")
    ap.add_argument("--resize-every", type=int, default=4000,
                    help="runner: the camera switches resolution every N captured frames")
    ap.add_argument("--report-every", type=int, default=1000, help="runner: print a line every N frames")
    ap.add_argument("--warmup", type=int, default=2000, help="runner: frames before the memory and latency baseline")
    ap.add_argument("--panel-warmup", type=int, default=15, help="panel: requests before the memory baseline")
    ap.add_argument("--requests", type=int, default=50, help="panel: requests in a row")
    ap.add_argument("--bad-every", type=int, default=10, help="panel: a bad upload every N requests")
    ap.add_argument("--max-growth-mb", type=float, default=50.0, help="limit on memory growth after warm-up")
    ap.add_argument("--max-drift-ms", type=float, default=20.0, help="limit on the runner's latency drift")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    figures: dict = {}
    ok = True
    if args.what in ("runner", "all"):
        r = runner_soak(args.frames, args.effect, args.size, args.camera_fps, args.outage_every, args.resize_every,
                        args.report_every, args.warmup)
        figures["runner"] = r
        print(f"runner: {r['frames']} frames in {r['seconds']:.0f} s ({r['fps']:.0f} FPS, {r['dropped']} dropped); "
              f"memory {r['memory_start_mb']:.0f} -> {r['memory_end_mb']:.0f} MB ({r['memory_growth_mb']:+.1f} MB); "
              f"latency {r['latency_first_ms']:.1f} -> {r['latency_last_ms']:.1f} ms ({r['latency_drift_ms']:+.1f} ms); "
              f"faults injected {r['faults_injected']} ({r['outages']} camera losses, {r['resolution_changes']} "
              f"resolution changes), survived {r['faults_survived']}")
        ok &= (r["memory_growth_mb"] < args.max_growth_mb and r["latency_drift_ms"] < args.max_drift_ms
               and r["faults_survived"] == r["faults_injected"])
    if args.what in ("panel", "all"):
        p = panel_soak(args.requests, args.bad_every, args.panel_warmup)
        figures["panel"] = p
        per = ", ".join(f"{k} {v:.2f} s" for k, v in p["seconds_per_request"].items())
        print(f"panel: {p['requests_served']} requests served ({per}); server memory {p['memory_start_mb']:.0f} -> "
              f"{p['memory_end_mb']:.0f} MB ({p['memory_growth_mb']:+.1f} MB); faults injected {p['faults_injected']} "
              f"(bad uploads), survived {p['faults_survived']}")
        ok &= (p["memory_growth_mb"] < args.max_growth_mb and p["faults_survived"] == p["faults_injected"]
               and p["server_alive"])
    print("PASS" if ok else "FAIL: a limit was broken (see above)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
