"""First Order Motion Model engine (own implementation, loads the official checkpoints).

The official code and checkpoints (https://github.com/AliaksandrSiarohin/first-order-model) are
CC BY-NC; users download ``vox-cpk.pth.tar`` / ``vox-adv-cpk.pth.tar`` and ``vox-256.yaml`` themselves.
"""
from engine.fomm.checkpoint import build_models, build_random_models, convert_to_safetensors, load_checkpoint
from engine.fomm.config import VOX256_MODEL_PARAMS, FommConfig, vox256_config
from engine.fomm.dense_motion import DenseMotionNetwork
from engine.fomm.generator import OcclusionAwareGenerator, SourceFeatures
from engine.fomm.keypoint_detector import KPDetector

__all__ = [
    "DenseMotionNetwork",
    "FommConfig",
    "KPDetector",
    "OcclusionAwareGenerator",
    "SourceFeatures",
    "VOX256_MODEL_PARAMS",
    "build_models",
    "build_random_models",
    "convert_to_safetensors",
    "load_checkpoint",
    "vox256_config",
]
