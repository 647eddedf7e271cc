"""ONNX export + ONNX Runtime parity with the PyTorch path (small model)."""
import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install puppetcam[neural])")

from engine.fomm import load_checkpoint  # noqa: E402
from engine.fomm.onnx_runtime import OnnxFomm, available_providers, build_onnx  # noqa: E402

KEYS = ("prediction", "occlusion_map", "deformation", "mask", "sparse_deformed")


@pytest.fixture(scope="module")
def ref(fomm_fixtures):
    with np.load(fomm_fixtures / "small-parity.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize("align_corners", [True, False])
def test_onnx_runtime_parity(fomm_fixtures, ref, tmp_path, align_corners):
    kp, gen = load_checkpoint(fomm_fixtures / "small-cpk.pth.tar", fomm_fixtures / "small-config.yaml",
                              align_corners=align_corners)
    ort_fomm = build_onnx(kp, gen, image_size=64, cache_dir=tmp_path, threads=1)
    assert ort_fomm.provider in available_providers()
    # export must leave the torch modules in eval mode
    assert not any(m.training for m in gen.modules()) and not any(m.training for m in kp.modules())
    prefix = "" if align_corners else "gsac0__"
    source = torch.from_numpy(ref["source"])
    with torch.inference_mode():
        kp_source = ort_fomm.keypoints(source)
        for name in ("value", "jacobian"):
            assert float(np.abs(kp_source[name].numpy() - ref[f"kp_source_{name}"]).max()) <= 1e-5
        features = gen.encode_source(source, kp(source))
        for t in range(0, 6, 2):
            kp_norm = {"value": torch.from_numpy(ref["rel_adapt__kp_norm_value"][t]),
                       "jacobian": torch.from_numpy(ref["rel_adapt__kp_norm_jacobian"][t])}
            out = ort_fomm.animate(features, kp_norm)
            torch_out = gen.animate(features, kp_norm)
            for key in KEYS:
                expected = ref[f"{prefix}rel_adapt__{key}"][t]
                assert float(np.abs(out[key].numpy() - expected).max()) <= 1e-4, f"{key} vs fixture"
                assert float((out[key] - torch_out[key]).abs().max()) <= 1e-4, f"{key} vs torch"


def test_bad_provider_falls_back_to_cpu(fomm_fixtures, tmp_path):
    kp, gen = load_checkpoint(fomm_fixtures / "small-cpk.pth.tar", fomm_fixtures / "small-config.yaml")
    first = build_onnx(kp, gen, image_size=64, cache_dir=tmp_path, threads=1)
    fallback = OnnxFomm(first.kp_path, first.frame_path, providers=["NoSuchExecutionProvider"], threads=1)
    assert fallback.provider == "CPUExecutionProvider"
    assert "NoSuchExecutionProvider" in fallback.fallback_reason
