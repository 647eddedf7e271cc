"""One object for live use: models on a device, per-source cache, torch / ONNX Runtime backends,
TF32 convolutions on CUDA (the runtime's choice, not torch's default), and the CUDA fp16 autocast
option with automatic fall back to fp32."""
from __future__ import annotations

import contextlib
import functools
import logging

import torch

from engine.fomm.fast import FastGenerator
from engine.fomm.generator import SourceFeatures

log = logging.getLogger(__name__)


def _on_device(method):
    """``torch.inference_mode`` and cuDNN's TF32 switch set to the runtime's ``tf32`` for the call
    (the switch is process-wide in torch: it is put back afterwards)."""
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        before = torch.backends.cudnn.allow_tf32
        torch.backends.cudnn.allow_tf32 = self.tf32
        try:
            with torch.inference_mode():
                return method(self, *args, **kwargs)
        finally:
            torch.backends.cudnn.allow_tf32 = before
    return call


def output_is_bad(prediction: torch.Tensor) -> bool:
    """NaN/Inf anywhere, or a blank (constant) image: fp16 overflow/underflow symptoms."""
    p = prediction.float()
    return bool(not torch.isfinite(p).all() or float(p.std()) < 1e-4)


class FommRuntime:
    """``set_source(image) -> kp``, ``keypoints(image) -> kp``, ``animate(kp_driving) -> prediction``.

    Images are float tensors (1, 3, H, W) in [0, 1]. ``backend`` is ``"torch"`` (fast exact path)
    or ``"onnx"`` (ONNX Runtime, best provider); ``fp16`` autocasts on CUDA and falls back to fp32
    for good when an output is NaN/Inf or blank. ``tune_malloc`` (default on) applies the
    process-wide glibc setting of :mod:`engine.fomm.malloc` (no page faults on per-frame tensors).

    ``tf32`` (CUDA, fp32): cuDNN convolutions on TF32 tensor cores (Ampere and newer). Measured on
    an H200 with the vox-256 generator at 256x256: 3.6 ms a frame against 6.6 ms exact; the small
    fixture checkpoint's prediction moves by at most 1.6e-3 (0.4 of a level), its keypoints by
    2.4e-4 (0.03 px). ``tf32=False`` gives exact fp32 (within 1e-5 of the CPU). The choice is made
    here, around each call, rather than left to torch's process-wide default.
    """

    def __init__(self, kp_detector, generator, device: str | torch.device = "cpu", backend: str = "torch",
                 fp16: bool = False, image_size: int = 256, onnx_dir=None, threads: int | None = None,
                 tune_malloc: bool = True, tf32: bool = True):
        if tune_malloc:  # process-wide, glibc only: keep freed heap memory (see engine.fomm.malloc)
            from engine.fomm.malloc import keep_freed_memory

            self.malloc_tuned = keep_freed_memory()
        else:
            self.malloc_tuned = False
        self.device = torch.device(device)
        self.kp_detector = kp_detector.to(self.device).eval()
        self.generator = generator.to(self.device).eval()
        self.fast = FastGenerator(self.generator).to(self.device)
        self.fp16 = bool(fp16) and self.device.type == "cuda"
        self.tf32 = bool(tf32)
        self.fp16_fell_back = False
        self.backend = backend
        self.onnx = None
        if backend == "onnx":
            from engine.fomm.onnx_runtime import build_onnx

            self.onnx = build_onnx(self.kp_detector.cpu(), self.generator.cpu(), image_size=image_size,
                                   cache_dir=onnx_dir, threads=threads)
            self.kp_detector.to(self.device)
            self.fast.to(self.device)
        elif backend != "torch":
            raise ValueError(f"unknown FOMM backend {backend!r} (torch or onnx)")
        self.features: SourceFeatures | None = None

    @property
    def provider(self) -> str:
        """What runs the networks, for the UI: e.g. 'torch cpu', 'torch cuda fp16', 'onnxruntime CPUExecutionProvider'."""
        if self.onnx is not None:
            return f"onnxruntime {self.onnx.provider}"
        precision = " fp16" if self.fp16 else " tf32" if self.tf32 and self.device.type == "cuda" else ""
        return f"torch {self.device.type}{precision}"

    def _to_backend(self, image: torch.Tensor) -> torch.Tensor:
        return image if self.onnx is not None else image.to(self.device)

    @_on_device
    def keypoints(self, image: torch.Tensor) -> dict:
        if self.onnx is not None:
            return self.onnx.keypoints(image)
        kp = self.kp_detector(image.to(self.device))
        return {k: v.float() for k, v in kp.items()}

    @_on_device
    def set_source(self, image: torch.Tensor) -> dict:
        """Per-avatar work: source keypoints and every source-only tensor of the generator."""
        image = image.to(self.device)
        kp_source = {k: v.to(self.device) for k, v in self.keypoints(image).items()}
        self.features = self.fast.encode_source(image, kp_source)
        if self.onnx is not None:
            self.features_cpu = SourceFeatures(
                source_image=image.cpu(), encoded=self.features.encoded.cpu(),
                kp_source={k: v.cpu() for k, v in kp_source.items()},
                dense={k: (v.cpu() if torch.is_tensor(v) else {kk: vv.cpu() for kk, vv in v.items()})
                       for k, v in self.features.dense.items()})
        return {k: v.cpu() for k, v in kp_source.items()}

    @_on_device
    def animate(self, kp_driving: dict) -> dict:
        if self.features is None:
            raise RuntimeError("FommRuntime.animate called before set_source")
        if self.onnx is not None:
            return self.onnx.animate(self.features_cpu, {k: v.cpu() for k, v in kp_driving.items()})
        kp = {k: v.to(self.device, torch.float32) for k, v in kp_driving.items()}
        if self.fp16:
            ctx = (torch.autocast(device_type="cuda", dtype=torch.float16) if self.device.type == "cuda"
                   else contextlib.nullcontext())
            with ctx:
                out = self.fast.animate(self.features, kp)
            if not output_is_bad(out["prediction"]):
                return {k: v.float() for k, v in out.items()}
            log.warning("FOMM fp16 output is NaN/Inf or blank: falling back to fp32")
            self.fp16 = False
            self.fp16_fell_back = True
        return self.fast.animate(self.features, kp)
