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


def _official_worker(conn, checkpoint, config, seed, threads, size):
    """Child process: the official-style uncached forward, glibc malloc left at its defaults (as
    the official demo runs). Answers one timed call per request."""
    import time as _time

    import torch as _torch

    from engine.fomm import build_random_models, load_checkpoint

    _torch.set_num_threads(threads)
    if checkpoint is None:
        kp, gen = build_random_models(seed=seed)
    else:
        kp, gen = load_checkpoint(checkpoint, config)
    source, driving = conn.recv()
    with _torch.inference_mode():
        kp_source, kp_driving = kp(source), kp(driving)
        conn.send(gen(source, kp_driving=kp_driving, kp_source=kp_source)["prediction"])
        while conn.recv():
            t0 = _time.perf_counter()
            gen(source, kp_driving=kp_driving, kp_source=kp_source)
            conn.send((_time.perf_counter() - t0) * 1000)


def run_bench(checkpoint=None, config=None, random_weights: bool = False, threads: int = 2,
              size: int = 256, repeats: int = 10, warmup: int = 3, onnx: bool = True,
              device: str = "cpu", seed: int = 0, official_process: bool = True,
              tune_malloc: bool = True) -> dict:
    """Medians in ms per frame, all paths interleaved round by round:

    - ``plain_ms``: the official-style uncached generator forward. With ``official_process`` (CPU
      default) it runs in a separate process with glibc's default malloc settings, as the official
      code runs; the ratios are against it;
    - ``plain_inproc_ms``: the same forward in this process (with the malloc tuning, if on);
    - ``fast_ms``: :class:`FastGenerator`'s cached exact path as ``FommRuntime`` runs it (Winograd
      convolutions, malloc tuning); ``fast_direct_ms``: the same with direct convolutions (the
      previous fast path);
    - ``onnx_ms``: the ONNX Runtime per-frame graph; ``kp_ms``: the keypoint detector.

    Also ``*_speedup`` = plain / path, ``max_abs_diff_vs_plain`` of each path's prediction, the
    load average before and after, threads and whether the malloc tuning was in effect.
    """
    import os

    from engine.fomm import build_random_models, load_checkpoint
    from engine.fomm.fast import FastGenerator, FastResBlock, SubPixelUpBlock

    torch.set_num_threads(threads)
    malloc_tuned = False
    if tune_malloc:
        from engine.fomm.malloc import keep_freed_memory

        malloc_tuned = keep_freed_memory()
    torch.manual_seed(seed)
    if random_weights or checkpoint is None:
        checkpoint = None
        kp, gen = build_random_models(seed=seed)
        source_label = f"random weights (vox-256 dims, seed {seed})"
    else:
        kp, gen = load_checkpoint(checkpoint, config)
        source_label = str(checkpoint)
    kp, gen = kp.to(device), gen.to(device)
    fast = FastGenerator(gen)
    source = torch.rand(1, 3, size, size, device=device)
    driving = torch.rand(1, 3, size, size, device=device)
    official_process = official_process and device == "cpu"
    paths, child, conn = {}, None, None
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None

    def forced(res_method, up_method, fn):
        def run():
            old = FastResBlock.method, SubPixelUpBlock.method
            FastResBlock.method, SubPixelUpBlock.method = res_method, up_method
            try:
                return fn()
            finally:
                FastResBlock.method, SubPixelUpBlock.method = old
        return run

    try:
        if official_process:
            import multiprocessing as mp

            ctx = mp.get_context("spawn")
            conn, child_conn = ctx.Pipe()
            child = ctx.Process(target=_official_worker, daemon=True,
                                args=(child_conn, checkpoint, config, seed, threads, size))
            child.start()
            conn.send((source, driving))
        with torch.inference_mode():
            kp_source = kp(source)
            kp_driving = kp(driving)
            features = fast.encode_source(source, kp_source)
            paths["kp"] = lambda: kp(driving)
            if official_process:
                def official():
                    conn.send(True)
                    return conn.recv()
                paths["plain"] = official
                reference = conn.recv()
            else:
                reference = gen(source, kp_driving=kp_driving, kp_source=kp_source)["prediction"]
            paths["plain_inproc"] = lambda: gen(source, kp_driving=kp_driving, kp_source=kp_source)
            paths["fast"] = lambda: fast.animate(features, kp_driving)
            paths["fast_direct"] = forced("conv", "matmul", lambda: fast.animate(features, kp_driving))
            ort_fomm = None
            if onnx and device == "cpu":
                try:
                    from engine.fomm.onnx_runtime import build_onnx

                    ort_fomm = build_onnx(kp, gen, image_size=size, threads=threads)
                    paths["onnx"] = lambda: ort_fomm.animate(features, kp_driving)
                except ImportError:
                    ort_fomm = None
            diffs = {name: float((paths[name]()["prediction"].to(reference.device) - reference).abs().max())
                     for name in ("plain_inproc", "fast", "fast_direct", "onnx") if name in paths}
            times = {name: [] for name in paths}
            for i in range(warmup + repeats):
                for name, fn in paths.items():
                    t0 = time.perf_counter()
                    out = fn()
                    if device != "cpu":
                        torch.cuda.synchronize()
                    elapsed = (time.perf_counter() - t0) * 1000
                    if name == "plain" and official_process:
                        elapsed = out  # timed inside the official process (no pipe overhead)
                    if i >= warmup:
                        times[name].append(elapsed)
    finally:
        if child is not None:
            try:
                conn.send(False)
            except OSError:
                pass
            child.join(timeout=10)
            if child.is_alive():
                child.kill()
    result = {f"{name}_ms": statistics.median(ts) for name, ts in times.items()}
    if "plain_ms" not in result:  # no separate process (CUDA, or asked): the in-process forward is the baseline
        result["plain_ms"] = result["plain_inproc_ms"]
    for name in ("plain_inproc", "fast", "fast_direct", "onnx"):
        if f"{name}_ms" in result:
            result[f"{name}_speedup"] = result["plain_ms"] / result[f"{name}_ms"]
    result.update(threads=threads, size=size, repeats=repeats, warmup=warmup, weights=source_label,
                  plain_in_separate_process=official_process, malloc_tuned=malloc_tuned,
                  max_abs_diff_vs_plain=diffs, onnx_provider=ort_fomm.provider if ort_fomm else None,
                  load_avg_before=load_before,
                  load_avg_after=os.getloadavg() if hasattr(os, "getloadavg") else None,
                  torch=torch.__version__)
    return result
