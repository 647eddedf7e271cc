"""The FOMM engine behind the Animator interface (First Order Motion Model, official checkpoints).

Per avatar (``set_source``): a 256x256 crop around the portrait's face, its keypoints and every
source-only tensor of the generator. Per frame: driving keypoints from a crop around the driver's
face, then ``render`` animates the crop at the target keypoints and pastes it back into the
full-resolution portrait with a feathered mask.
"""
from __future__ import annotations

import numpy as np
import torch

from engine.animators.base import Animator
from engine.fomm.crop import FaceCrop, crop_image, face_crop, feather_mask, paste_back, to_tensor_layout
from engine.fomm.runtime import FommRuntime
from engine.motion import Keypoints
from engine.portrait import Portrait
from engine.tracking import FaceLandmarks


class FommAnimator(Animator):
    name = "fomm"
    needs_driving_image = True

    def __init__(self, checkpoint=None, config=None, device: str = "cpu", backend: str = "torch",
                 fp16: bool = False, align_corners: bool = True, threads: int | None = None,
                 crop_scale: float = 1.8, crop_shift_up: float = 0.1, models=None, size: int | None = None,
                 random_weights: bool = False, seed: int = 0):
        """``checkpoint``/``config``: the official files (``CheckpointError`` if unusable); or
        ``models=(kp_detector, generator)`` already built (tests, benchmarks); or
        ``random_weights=True``: the full vox-256 model (or ``config``'s) with weights drawn from
        ``seed``, no checkpoint needed (benchmarks: ``puppetcam bench --engine fomm --random-weights``)."""
        if models is None and random_weights:
            from engine.fomm import FommConfig, build_random_models

            cfg = None if config is None else (config if isinstance(config, FommConfig)
                                               else FommConfig.from_yaml(config))
            models = build_random_models(cfg, seed=seed, align_corners=align_corners)
        if models is None:
            from engine.fomm import load_checkpoint

            if checkpoint is None or config is None:
                from engine.errors import CheckpointError

                raise CheckpointError("the fomm engine needs a checkpoint and its config "
                                      "(vox-cpk.pth.tar + vox-256.yaml from the official FOMM release)")
            models = load_checkpoint(checkpoint, config, align_corners=align_corners)
        if threads:
            torch.set_num_threads(int(threads))
        kp, gen = models
        if size is None:  # the resolution the checkpoint was trained at (vox-256: 256)
            size = _config_image_size(config)
        self.size = size
        self.crop_scale = crop_scale
        self.crop_shift_up = crop_shift_up
        self.runtime = FommRuntime(kp, gen, device=device, backend=backend, fp16=fp16, image_size=size,
                                   threads=threads)
        self._mask = feather_mask(size)
        self._portrait: Portrait | None = None
        self._crop: FaceCrop | None = None

    @property
    def provider(self) -> str:
        return self.runtime.provider

    def set_source(self, portrait: Portrait) -> Keypoints:
        self._portrait = portrait
        self._crop = face_crop(portrait.landmarks.xy, portrait.size, self.size, self.crop_scale,
                               self.crop_shift_up)
        tensor = torch.from_numpy(to_tensor_layout(crop_image(portrait.image, self._crop)))
        kp = self.runtime.set_source(tensor)
        return _keypoints(kp)

    def driving_keypoints(self, image: np.ndarray | None, face: FaceLandmarks) -> Keypoints:
        if image is None:
            raise ValueError("the fomm engine needs the driving image, not only landmarks")
        crop = face_crop(face.xy, (image.shape[1], image.shape[0]), self.size, self.crop_scale,
                               self.crop_shift_up)
        tensor = torch.from_numpy(to_tensor_layout(crop_image(image, crop)))
        return _keypoints(self.runtime.keypoints(tensor))

    def render(self, target: Keypoints) -> np.ndarray:
        if self._portrait is None:
            raise RuntimeError("FommAnimator.render called before set_source")
        value = torch.from_numpy(np.asarray(target.value, dtype=np.float32))[None]
        if target.jacobian is not None:
            jacobian = torch.from_numpy(np.asarray(target.jacobian, dtype=np.float32))[None]
        else:
            jacobian = torch.eye(2).expand(1, value.shape[1], 2, 2).contiguous()
        out = self.runtime.animate({"value": value, "jacobian": jacobian})
        crop = (out["prediction"][0].float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5)
        return paste_back(self._portrait.image, crop.astype(np.uint8), self._crop, self._mask)

    def close(self) -> None:
        self.runtime = None
        self._portrait = None


def _config_image_size(config) -> int:
    if config is None:
        return 256
    from engine.fomm import FommConfig

    cfg = config if isinstance(config, FommConfig) else FommConfig.from_yaml(config)
    return cfg.image_size


def _keypoints(kp: dict) -> Keypoints:
    value = kp["value"][0].detach().cpu().numpy().astype(np.float32)
    jac = kp.get("jacobian")
    return Keypoints(value=value, jacobian=None if jac is None else jac[0].detach().cpu().numpy().astype(np.float32))
