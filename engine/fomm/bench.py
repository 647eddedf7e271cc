"""FOMM speed benchmark (random weights or a real checkpoint) for ``puppetcam bench --engine fomm``.

All paths run interleaved in the same rounds (one call of each per round) so that load from other
processes hits them alike; each number is the median over ``repeats`` rounds after ``warmup``.
"""
from __future__ import annotations

import statistics
import time

import torch


def vox256_model_params() -> dict:
    """The official vox-256 model_params (built in: :data:`engine.fomm.config.VOX256_MODEL_PARAMS`)."""
    import copy

    from engine.fomm.config import VOX256_MODEL_PARAMS

    return copy.deepcopy(VOX256_MODEL_PARAMS)


def run_bench(checkpoint=None, config=None, random_weights: bool = False, threads: int = 2,
              size: int = 256, repeats: int = 10, warmup: int = 3, onnx: bool = True,
              device: str = "cpu", seed: int = 0) -> dict:
    """Medians in ms per frame: ``kp_ms`` (keypoint detector), ``plain_ms`` (official-style
    uncached generator forward), ``fast_ms`` (cached fast exact path), ``onnx_ms`` (ONNX Runtime
    per-frame graph), ratios against ``plain_ms``, and ``max_abs_diff`` of each path vs plain."""
    from engine.fomm import build_random_models, load_checkpoint
    from engine.fomm.fast import FastGenerator

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    if random_weights or checkpoint is None:
        kp, gen = build_random_models(seed=seed)
        source_label = "random weights (vox-256 dims)"
    else:
        kp, gen = load_checkpoint(checkpoint, config)
        source_label = str(checkpoint)
    kp, gen = kp.to(device), gen.to(device)
    fast = FastGenerator(gen)
    source = torch.rand(1, 3, size, size, device=device)
    driving = torch.rand(1, 3, size, size, device=device)
    paths = {}
    with torch.inference_mode():
        kp_source = kp(source)
        kp_driving = kp(driving)
        features = fast.encode_source(source, kp_source)
        paths["kp"] = lambda: kp(driving)
        paths["plain"] = lambda: gen(source, kp_driving=kp_driving, kp_source=kp_source)
        paths["fast"] = lambda: fast.animate(features, kp_driving)
        ort_fomm = None
        if onnx and device == "cpu":
            try:
                from engine.fomm.onnx_runtime import build_onnx

                ort_fomm = build_onnx(kp, gen, image_size=size, threads=threads)
                paths["onnx"] = lambda: ort_fomm.animate(features, kp_driving)
            except ImportError:
                ort_fomm = None
        reference = paths["plain"]()["prediction"]
        diffs = {name: float((paths[name]()["prediction"] - reference).abs().max())
                 for name in ("fast", "onnx") if name in paths}
        times = {name: [] for name in paths}
        for i in range(warmup + repeats):
            for name, fn in paths.items():
                t0 = time.perf_counter()
                fn()
                if device != "cpu":
                    torch.cuda.synchronize()
                if i >= warmup:
                    times[name].append((time.perf_counter() - t0) * 1000)
    result = {f"{name}_ms": statistics.median(ts) for name, ts in times.items()}
    for name in ("fast", "onnx"):
        if f"{name}_ms" in result:
            result[f"{name}_speedup"] = result["plain_ms"] / result[f"{name}_ms"]
    result.update(threads=threads, size=size, repeats=repeats, warmup=warmup, weights=source_label,
                  max_abs_diff_vs_plain=diffs, onnx_provider=ort_fomm.provider if ort_fomm else None,
                  torch=torch.__version__)
    return result
