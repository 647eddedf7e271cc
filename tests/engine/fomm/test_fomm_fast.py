"""Cached and fast per-frame paths give the official outputs."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.fomm import load_checkpoint
from engine.fomm.fast import FastGenerator, SubPixelUpBlock

KEYS = ("prediction", "occlusion_map", "deformation", "mask", "sparse_deformed")


@pytest.fixture(scope="module")
def ref(fomm_fixtures):
    with np.load(fomm_fixtures / "small-parity.npz") as data:
        return {k: data[k] for k in data.files}


def _kp(ref, prefix, t=None):
    v, j = ref[f"{prefix}_value"], ref[f"{prefix}_jacobian"]
    if t is not None:
        v, j = v[t], j[t]
    return {"value": torch.from_numpy(v), "jacobian": torch.from_numpy(j)}


@pytest.mark.parametrize("align_corners", [True, False])
def test_cached_path_equals_plain_forward(fomm_fixtures, ref, align_corners):
    kp, gen = load_checkpoint(fomm_fixtures / "small-cpk.pth.tar", fomm_fixtures / "small-config.yaml",
                              align_corners=align_corners)
    source = torch.from_numpy(ref["source"])
    with torch.inference_mode():
        kp_source = kp(source)
        features = gen.encode_source(source, kp_source)
        for t in range(6):
            kp_norm = _kp(ref, "rel_adapt__kp_norm", t)
            plain = gen(source, kp_driving=kp_norm, kp_source=kp_source)
            cached = gen.animate(features, kp_norm, with_deformed=True)
            for key in KEYS + ("deformed",):
                assert float((plain[key] - cached[key]).abs().max()) <= 1e-5, key


@pytest.mark.parametrize("align_corners, method", [(True, "conv"), (False, "matmul"), (True, "auto")])
def test_fast_generator_matches_fixture(fomm_fixtures, ref, align_corners, method, monkeypatch):
    monkeypatch.setattr(SubPixelUpBlock, "method", method)
    kp, gen = load_checkpoint(fomm_fixtures / "small-cpk.pth.tar", fomm_fixtures / "small-config.yaml",
                              align_corners=align_corners)
    fast = FastGenerator(gen)
    prefix = "" if align_corners else "gsac0__"
    source = torch.from_numpy(ref["source"])
    kp_source = _kp(ref, "kp_source")
    with torch.inference_mode():
        features = fast.encode_source(source, kp_source)
        for run in ("rel_adapt", "abs"):
            for t in range(6):
                out = fast.animate(features, _kp(ref, f"{run}__kp_norm", t), with_deformed=True)
                for key in KEYS + ("deformed",):
                    expected = ref[f"{prefix}{run}__{key}"][t]
                    err = float(np.abs(out[key].numpy() - expected).max())
                    assert err <= 1e-4, f"{run} {key} frame {t}: {err:.3g}"


def test_subpixel_upblock_equals_upsample_then_conv():
    from engine.fomm.blocks import UpBlock2d

    torch.manual_seed(0)
    block = UpBlock2d(6, 5).eval()
    with torch.no_grad():
        block.norm.running_mean.normal_()
        block.norm.running_var.uniform_(0.5, 1.5)
        block.norm.weight.normal_()
        x = torch.randn(2, 6, 7, 9)
        expected = block(x)
        fast = SubPixelUpBlock(block)
        for method in ("conv", "matmul"):
            fast.method = method
            assert float((fast(x) - expected).abs().max()) < 1e-5, method


@pytest.mark.parametrize("r, padding, shape", [(3, 1, (2, 5, 13, 10)), (3, 1, (1, 4, 8, 8)), (2, 0, (1, 6, 9, 7))])
def test_winograd_conv_equals_conv2d(r, padding, shape):
    from engine.fomm.fast import WinogradConv

    g = torch.Generator().manual_seed(r + shape[2])
    c = shape[1]
    weight = torch.randn(7, c, r, r, generator=g) / (c * r * r) ** 0.5
    bias = torch.randn(7, generator=g)
    x = torch.randn(*shape, generator=g)
    conv = WinogradConv(weight, bias, m=4, padding=padding)
    expected = F.conv2d(x.double(), weight.double(), bias.double(), padding=padding)
    assert float((conv(x).double() - expected).abs().max()) < 1e-5
    residual = torch.randn_like(expected, dtype=torch.float32)
    fused = conv(x, residual=residual, relu=True).double()
    assert float((fused - (expected + residual.double()).relu()).abs().max()) < 1e-5


def test_fast_generator_direct_convolutions_match_fixture(fomm_fixtures, ref, monkeypatch):
    """The non-Winograd kernels (FastResBlock.method = "conv") stay exact too."""
    from engine.fomm.fast import FastResBlock

    monkeypatch.setattr(FastResBlock, "method", "conv")
    monkeypatch.setattr(SubPixelUpBlock, "method", "winograd")
    kp, gen = load_checkpoint(fomm_fixtures / "small-cpk.pth.tar", fomm_fixtures / "small-config.yaml")
    fast = FastGenerator(gen)
    with torch.inference_mode():
        features = fast.encode_source(torch.from_numpy(ref["source"]), _kp(ref, "kp_source"))
        for t in (1, 4):
            out = fast.animate(features, _kp(ref, "rel_adapt__kp_norm", t))
            for key in KEYS:
                err = float(np.abs(out[key].numpy() - ref[f"rel_adapt__{key}"][t]).max())
                assert err <= 1e-4, f"{key} frame {t}: {err:.3g}"


def test_malloc_tuning_is_guarded_and_idempotent():
    import sys

    from engine.fomm.malloc import keep_freed_memory

    first = keep_freed_memory()
    assert keep_freed_memory() is first
    if not sys.platform.startswith("linux"):
        assert first is False


def test_bench_paths_in_process(fomm_fixtures):
    """``run_bench`` without the separate official process (``--in-process``, and always on CUDA):
    the in-process forward is the baseline the speedups are against. It raised KeyError before."""
    from engine.fomm.bench import run_bench

    result = run_bench(checkpoint=fomm_fixtures / "small-cpk.pth.tar", config=fomm_fixtures / "small-config.yaml",
                       size=64, repeats=2, warmup=0, onnx=False, official_process=False, tune_malloc=False)
    assert result["plain_in_separate_process"] is False
    assert result["plain_ms"] == result["plain_inproc_ms"] > 0
    assert result["fast_speedup"] == pytest.approx(result["plain_ms"] / result["fast_ms"])
    assert set(result["max_abs_diff_vs_plain"]) == {"plain_inproc", "fast", "fast_direct"}
    assert max(result["max_abs_diff_vs_plain"].values()) < 1e-4
