"""Loading official FOMM checkpoints safely (weights only) with one-line errors.

The official files (``vox-cpk.pth.tar``, ``vox-adv-cpk.pth.tar`` with ``config/vox-256.yaml``) are
dicts whose ``generator`` and ``kp_detector`` entries are state_dicts; other top-level entries
(discriminator, optimizers, epoch) are ignored. ``.safetensors`` files written by
:func:`convert_to_safetensors` hold the same tensors under ``generator.*`` / ``kp_detector.*``.
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Mapping

import torch

from engine.errors import CheckpointError
from engine.fomm.config import FommConfig
from engine.fomm.generator import OcclusionAwareGenerator
from engine.fomm.keypoint_detector import KPDetector

NETWORKS = ("generator", "kp_detector")
_MAX_LISTED = 3


def build_models(config: FommConfig | Mapping, device="cpu", align_corners: bool = True):
    """(kp_detector, generator) with default init, built from a config (or a YAML dict)."""
    if not isinstance(config, FommConfig):
        config = FommConfig.from_dict(config)
    kp = KPDetector(**vars(config.kp_detector))
    gp = dict(vars(config.generator))
    gen = OcclusionAwareGenerator(**gp)
    gen.set_align_corners(align_corners)
    return kp.to(device).eval(), gen.to(device).eval()


def build_random_models(config: FommConfig | Mapping | None = None, seed: int = 0, device="cpu",
                        align_corners: bool = True):
    """(kp_detector, generator) with seeded random weights, for benchmarks and ``--random-weights``.

    ``config`` defaults to the built-in vox-256 one. Weights are PyTorch's default init drawn after
    ``torch.manual_seed(seed)`` in a forked RNG (the global RNG state is left as it was); eval
    BatchNorm statistics are randomised too (mean N(0, 0.05), var U(0.3, 1)) so the outputs are not
    near-constant. The same seed gives the same weights.
    """
    from engine.fomm.config import vox256_config

    config = vox256_config() if config is None else config
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        kp, gen = build_models(config, device="cpu", align_corners=align_corners)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in list(kp.modules()) + list(gen.modules()):
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.05, generator=g)
                m.running_var.uniform_(0.3, 1.0, generator=g)
    return kp.to(device).eval(), gen.to(device).eval()


def read_state_dicts(checkpoint_path) -> dict[str, dict[str, torch.Tensor]]:
    """{'generator': sd, 'kp_detector': sd} from a .pth(.tar) or .safetensors file."""
    path = Path(checkpoint_path)
    if not path.is_file():
        raise CheckpointError(f"FOMM checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower() or "weights_only" in str(exc).lower():
            raise CheckpointError(
                f"FOMM checkpoint {path.name} contains Python objects/code, not only tensors; "
                "refused for safety (only weights can be loaded)") from None
        raise CheckpointError(f"FOMM checkpoint {path.name} is corrupt or not a PyTorch file "
                              f"({_first_line(exc)})") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError,
            AttributeError, TypeError, IndexError) as exc:
        raise CheckpointError(f"FOMM checkpoint {path.name} is truncated or not a PyTorch checkpoint "
                              f"({_first_line(exc)})") from None
    return _split(data, path.name)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:160]


def _split(data, name: str) -> dict:
    if not isinstance(data, Mapping):
        raise CheckpointError(f"FOMM checkpoint {name} holds a {type(data).__name__}, not a dict with "
                              "'generator' and 'kp_detector'")
    missing = [k for k in NETWORKS if k not in data]
    if missing:
        keys = sorted(str(k) for k in data)
        shown = ", ".join(keys[:6]) + (", ..." if len(keys) > 6 else "")
        hint = ""
        if any(k in data for k in ("inpainting_network", "bg_predictor")):
            hint = " (this looks like a Thin-Plate-Spline Motion Model checkpoint)"
        elif keys and all(isinstance(data[k], torch.Tensor) for k in data):
            hint = " (this is a bare state_dict of a single network, e.g. a LivePortrait part)"
        raise CheckpointError(f"FOMM checkpoint {name} lacks {' and '.join(repr(m) for m in missing)}; "
                              f"top-level keys: {shown}{hint}")
    out = {}
    for net in NETWORKS:
        sd = data[net]
        if not isinstance(sd, Mapping) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
            raise CheckpointError(f"FOMM checkpoint {name}: '{net}' is not a state_dict of tensors")
        out[net] = dict(sd)
    return out


def _read_safetensors(path: Path) -> dict:
    try:
        from safetensors.torch import load_file

        flat = load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own error types for truncated/bad headers
        raise CheckpointError(f"FOMM checkpoint {path.name} is truncated or not a safetensors file "
                              f"({_first_line(exc)})") from None
    nested: dict = {}
    for key, value in flat.items():
        net, _, rest = key.partition(".")
        nested.setdefault(net, {})[rest] = value
    return _split(nested, path.name)


def check_state_dict(module: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], net: str,
                     name: str) -> None:
    """Raise CheckpointError naming (a few) missing/unexpected keys and wrong shapes."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    wrong = [f"{k} {list(state_dict[k].shape)} vs expected {list(v.shape)}"
             for k, v in expected.items() if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)]
    if not (missing or unexpected or wrong):
        return
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if items:
            more = f", ... ({len(items)} in all)" if len(items) > _MAX_LISTED else ""
            parts.append(f"{label}: " + ", ".join(items[:_MAX_LISTED]) + more)
    raise CheckpointError(f"FOMM checkpoint {name} does not match the config ({net} "
                          + "; ".join(parts) + ")")


def load_checkpoint(checkpoint_path, config_path, device="cpu", align_corners: bool = True):
    """Build both networks from ``config_path`` and load ``checkpoint_path`` strictly.

    Returns ``(kp_detector, generator)`` in eval mode on ``device``. Every problem with either
    file raises :class:`engine.errors.CheckpointError` with one line naming what is wrong.
    """
    config = config_path if isinstance(config_path, FommConfig) else FommConfig.from_yaml(config_path)
    state = read_state_dicts(checkpoint_path)
    kp, gen = build_models(config, device="cpu", align_corners=align_corners)
    name = Path(checkpoint_path).name
    for net, module in (("kp_detector", kp), ("generator", gen)):
        check_state_dict(module, state[net], net, name)
        bad_dtype = [k for k, v in state[net].items()
                     if v.is_floating_point() != module.state_dict()[k].is_floating_point()]
        if bad_dtype:
            raise CheckpointError(f"FOMM checkpoint {name} ({net}): wrong dtype for "
                                  + ", ".join(bad_dtype[:_MAX_LISTED]))
        module.load_state_dict(state[net], strict=True)
    return kp.to(device).eval(), gen.to(device).eval()


def convert_to_safetensors(checkpoint_path, out_path) -> Path:
    """Write the generator and kp_detector weights of a checkpoint as one .safetensors file."""
    from safetensors.torch import save_file

    state = read_state_dicts(checkpoint_path)
    flat = {f"{net}.{k}": v.detach().contiguous() for net in NETWORKS for k, v in state[net].items()}
    out = Path(out_path)
    save_file(flat, str(out))
    return out
