"""ONNX export of the FOMM keypoint detector and per-frame generator, run with ONNX Runtime.

The per-frame graph takes the per-source cache as inputs (encoded source features, the repeated
downsampled source, the identity grid, the source heatmaps and source keypoints) and the driving
keypoints, so nothing source-only is recomputed per frame. The provider is picked from what the
installed onnxruntime offers (CUDA, DirectML, CoreML, CPU, in that order), then self-tested: a
provider that fails or disagrees with the CPU result is dropped and the next one is used.
"""
from __future__ import annotations

import logging
import warnings
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.fomm.fast import FastGenerator, SubPixelUpBlock
from engine.fomm.generator import SourceFeatures

log = logging.getLogger(__name__)

PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "DmlExecutionProvider", "CoreMLExecutionProvider",
                       "CPUExecutionProvider")
FRAME_INPUTS = ("encoded", "source_repeat", "grid", "heat_source", "kp_source_value",
                "kp_source_jacobian", "kp_driving_value", "kp_driving_jacobian")
FRAME_OUTPUTS = ("prediction", "occlusion_map", "mask", "deformation", "sparse_deformed")
KP_OUTPUTS = ("value", "jacobian")


class _KPGraph(nn.Module):
    def __init__(self, kp_detector):
        super().__init__()
        self.kp = kp_detector

    def forward(self, image):
        out = self.kp(image)
        return out["value"], out["jacobian"]


class _FrameGraph(nn.Module):
    def __init__(self, fast: FastGenerator):
        super().__init__()
        self.fast = fast

    def forward(self, encoded, source_repeat, grid, heat_source, ks_value, ks_jacobian, kd_value, kd_jacobian):
        deformed, mask, deformation, occlusion = self.fast.motion(
            source_repeat, grid, heat_source, ks_value, ks_jacobian, kd_value, kd_jacobian)
        prediction = self.fast.decode(encoded, deformation, occlusion)
        return prediction, occlusion, mask, deformation, deformed


def frame_inputs(features: SourceFeatures, kp_driving: dict) -> tuple:
    d, ks = features.dense, features.kp_source
    return (features.encoded, d["repeat"], d["grid"], d["heat_source"], ks["value"], ks["jacobian"],
            kp_driving["value"], kp_driving["jacobian"])


def export_onnx(kp_detector, generator, out_dir, image_size: int = 256, opset: int = 17) -> tuple[Path, Path]:
    """Write ``fomm_kp.onnx`` and ``fomm_frame.onnx`` (batch 1, fixed size) into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fast = generator if isinstance(generator, FastGenerator) else FastGenerator(generator)
    if not hasattr(kp_detector, "jacobian") or kp_detector.jacobian is None:
        raise ValueError("ONNX export needs a keypoint detector with Jacobians (estimate_jacobian: true)")
    kp_detector = kp_detector.cpu().float().eval()
    fast = fast.cpu().float().eval()
    image = torch.rand(1, fast.generator.num_channels, image_size, image_size)
    kp_path, frame_path = out_dir / "fomm_kp.onnx", out_dir / "fomm_frame.onnx"
    old_method = SubPixelUpBlock.method
    SubPixelUpBlock.method = "conv"  # the plain conv kernel exports as one Conv node
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python branches
            kp_source = kp_detector(image)
            features = fast.encode_source(image, kp_source)
            torch.onnx.export(_KPGraph(kp_detector).eval(), (image,), str(kp_path), input_names=["image"],
                              output_names=list(KP_OUTPUTS), opset_version=opset, dynamo=False)
            torch.onnx.export(_FrameGraph(fast).eval(), frame_inputs(features, kp_source), str(frame_path),
                              input_names=list(FRAME_INPUTS), output_names=list(FRAME_OUTPUTS),
                              opset_version=opset, dynamo=False)
    finally:
        SubPixelUpBlock.method = old_method
        # the exporter restores the wrappers' train/eval mode recursively: keep the networks in eval
        kp_detector.eval()
        fast.eval()
    return kp_path, frame_path


def available_providers() -> list[str]:
    import onnxruntime as ort

    have = set(ort.get_available_providers())
    return [p for p in PREFERRED_PROVIDERS if p in have] or ["CPUExecutionProvider"]


class OnnxFomm:
    """ONNX Runtime sessions for the keypoint detector and the per-frame generator.

    ``provider`` is the one in use after the self-test (shown to the user); ``fallback_reason``
    says why a better provider was dropped, if one was.
    """

    def __init__(self, kp_path, frame_path, providers=None, threads: int | None = None,
                 self_test_inputs: dict | None = None):
        self.kp_path, self.frame_path = str(kp_path), str(frame_path)
        self.threads = threads
        self.fallback_reason: str | None = None
        candidates = list(providers) if providers else available_providers()
        if "CPUExecutionProvider" not in candidates:
            candidates.append("CPUExecutionProvider")
        last_error = None
        for provider in candidates:
            try:
                self._open(provider)
                self.self_test(self_test_inputs)
                self.provider = provider
                break
            except Exception as exc:  # a provider that cannot run: fall back to the next one
                last_error = f"{provider}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                log.warning("ONNX Runtime provider failed its self-test, falling back (%s)", last_error)
                self.fallback_reason = last_error
        else:
            raise RuntimeError(f"no ONNX Runtime provider passed the self-test ({last_error})")

    def _open(self, provider: str) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # idle ORT worker threads must not spin: the app runs torch, the tracker and the UI beside it
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if self.threads:
            opts.intra_op_num_threads = int(self.threads)
            opts.inter_op_num_threads = 1
        providers = [provider] if provider == "CPUExecutionProvider" else [provider, "CPUExecutionProvider"]
        self.kp_session = ort.InferenceSession(self.kp_path, opts, providers=providers)
        self.frame_session = ort.InferenceSession(self.frame_path, opts, providers=providers)
        if provider not in self.frame_session.get_providers():
            raise RuntimeError(f"{provider} not usable by this onnxruntime build")

    def self_test(self, inputs: dict | None = None) -> None:
        """Run both graphs on a test input; outputs must be finite (and match ``inputs['expected']``)."""
        shape = [d if isinstance(d, int) else 1 for d in self.kp_session.get_inputs()[0].shape]
        image = np.random.default_rng(0).random(shape, dtype=np.float32) if inputs is None else inputs["image"]
        value, jacobian = self.kp_session.run(None, {"image": image})
        if not (np.isfinite(value).all() and np.isfinite(jacobian).all()):
            raise RuntimeError("keypoint detector output is not finite")
        if inputs is not None and "frame" in inputs:
            outs = self.frame_session.run(None, inputs["frame"])
            expected = inputs.get("expected")
            if not np.isfinite(outs[0]).all():
                raise RuntimeError("generator output is not finite")
            if expected is not None and float(np.abs(outs[0] - expected).max()) > 1e-3:
                raise RuntimeError("generator output differs from the PyTorch result")

    def keypoints(self, image) -> dict:
        arr = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image, np.float32)
        value, jacobian = self.kp_session.run(None, {"image": np.ascontiguousarray(arr, dtype=np.float32)})
        return {"value": torch.from_numpy(value), "jacobian": torch.from_numpy(jacobian)}

    def animate(self, features: SourceFeatures, kp_driving: dict) -> dict:
        feeds = {name: _np(t) for name, t in zip(FRAME_INPUTS, frame_inputs(features, kp_driving))}
        outs = self.frame_session.run(None, feeds)
        return {name: torch.from_numpy(o) for name, o in zip(FRAME_OUTPUTS, outs)}


def _np(t) -> np.ndarray:
    arr = t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)
    return np.ascontiguousarray(arr, dtype=np.float32)


def build_onnx(kp_detector, generator, image_size: int = 256, cache_dir=None, providers=None,
               threads: int | None = None) -> OnnxFomm:
    """Export (into ``cache_dir`` or a temp folder) and open with the best provider, self-tested
    against the PyTorch per-frame result on a random source."""
    out_dir = Path(cache_dir) if cache_dir else Path(tempfile.mkdtemp(prefix="puppetcam-fomm-onnx-"))
    fast = generator if isinstance(generator, FastGenerator) else FastGenerator(generator)
    kp_path, frame_path = export_onnx(kp_detector, fast, out_dir, image_size=image_size)
    with torch.inference_mode():
        image = torch.rand(1, fast.generator.num_channels, image_size, image_size,
                           generator=torch.Generator().manual_seed(1))
        kp_source = kp_detector(image)
        features = fast.encode_source(image, kp_source)
        expected = fast.animate(features, kp_source)["prediction"].numpy()
        feeds = {n: _np(t) for n, t in zip(FRAME_INPUTS, frame_inputs(features, kp_source))}
    return OnnxFomm(kp_path, frame_path, providers=providers, threads=threads,
                    self_test_inputs={"image": image.numpy(), "frame": feeds, "expected": expected})
