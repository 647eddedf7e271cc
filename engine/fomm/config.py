"""FOMM model configuration: dataclasses built from an official YAML's ``model_params``."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from engine.errors import CheckpointError


@dataclass(frozen=True)
class KPDetectorParams:
    block_expansion: int
    num_kp: int
    num_channels: int
    max_features: int
    num_blocks: int
    temperature: float
    estimate_jacobian: bool = False
    scale_factor: float = 1.0
    single_jacobian_map: bool = False
    pad: int = 0


@dataclass(frozen=True)
class DenseMotionParams:
    block_expansion: int
    num_blocks: int
    max_features: int
    scale_factor: float = 1.0
    kp_variance: float = 0.01


@dataclass(frozen=True)
class GeneratorParams:
    num_channels: int
    num_kp: int
    block_expansion: int
    max_features: int
    num_down_blocks: int
    num_bottleneck_blocks: int
    estimate_occlusion_map: bool = False
    dense_motion_params: DenseMotionParams | None = None
    estimate_jacobian: bool = False


@dataclass(frozen=True)
class FommConfig:
    kp_detector: KPDetectorParams
    generator: GeneratorParams
    frame_shape: tuple[int, ...] = (256, 256, 3)
    normalization: Mapping[str, Any] = field(default_factory=dict)

    @property
    def image_size(self) -> int:
        return int(self.frame_shape[0])

    @classmethod
    def from_yaml(cls, path) -> "FommConfig":
        import yaml

        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"FOMM config not found: {path}")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise CheckpointError(f"FOMM config {path.name} is not readable YAML: "
                                  f"{str(exc).splitlines()[0]}") from None
        return cls.from_dict(data, name=path.name)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], name: str = "config") -> "FommConfig":
        """Accepts the whole YAML document (with ``model_params``) or ``model_params`` itself."""
        if not isinstance(data, Mapping):
            raise CheckpointError(f"FOMM config {name} is not a mapping")
        mp = data.get("model_params", data)
        if not isinstance(mp, Mapping) or "common_params" not in mp:
            raise CheckpointError(f"FOMM config {name} has no model_params.common_params "
                                  "(is this a First Order Motion Model config?)")
        common = dict(mp["common_params"] or {})
        kp = _build(KPDetectorParams, {**dict(mp.get("kp_detector_params") or {}), **common},
                    f"{name}: kp_detector_params")
        gen = dict(mp.get("generator_params") or {})
        dm = gen.pop("dense_motion_params", None)
        dm_params = _build(DenseMotionParams, dict(dm), f"{name}: dense_motion_params") if dm else None
        g = _build(GeneratorParams, {**gen, **common, "dense_motion_params": dm_params},
                   f"{name}: generator_params")
        frame_shape = tuple((data.get("dataset_params") or {}).get("frame_shape", (256, 256, 3)))
        norm = dict((data.get("animate_params") or {}).get("normalization_params") or {})
        return cls(kp_detector=kp, generator=g, frame_shape=frame_shape, normalization=norm)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _build(kind, values: dict, where: str):
    names = {f.name for f in fields(kind)}
    required = {f.name for f in fields(kind)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    unknown = sorted(set(values) - names)
    missing = sorted(required - set(values))
    if unknown or missing:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if unknown:
            parts.append("unknown " + ", ".join(unknown))
        raise CheckpointError(f"FOMM config {where}: {'; '.join(parts)}")
    return kind(**values)


#: ``model_params`` of the official ``config/vox-256.yaml`` (hyperparameters only, no weights), so the
#: full-size model can be built without any file (benchmarks, ``--random-weights``).
VOX256_MODEL_PARAMS: dict = {
    "common_params": {"num_kp": 10, "num_channels": 3, "estimate_jacobian": True},
    "kp_detector_params": {"temperature": 0.1, "block_expansion": 32, "max_features": 1024,
                           "scale_factor": 0.25, "num_blocks": 5},
    "generator_params": {"block_expansion": 64, "max_features": 512, "num_down_blocks": 2,
                         "num_bottleneck_blocks": 6, "estimate_occlusion_map": True,
                         "dense_motion_params": {"block_expansion": 64, "max_features": 1024,
                                                 "num_blocks": 5, "scale_factor": 0.25}},
    "discriminator_params": {"scales": [1], "block_expansion": 32, "max_features": 512, "num_blocks": 4,
                             "sn": True},
}


def vox256_config() -> FommConfig:
    """The official vox-256 configuration (256x256 frames), built in."""
    import copy

    return FommConfig.from_dict({"model_params": copy.deepcopy(VOX256_MODEL_PARAMS),
                                 "dataset_params": {"frame_shape": [256, 256, 3]}}, name="vox-256")
