"""Numerical parity with the official FOMM code (fixtures in ../shared/fixtures/fomm)."""
import json

import numpy as np
import pytest
import torch

from engine.fomm import KPDetector, OcclusionAwareGenerator, build_models, load_checkpoint
from engine.fomm.config import FommConfig
from engine.motion import normalize_kp

RUNS = {  # prefix: (relative movement + jacobian, adapt movement scale)
    "rel_adapt": (True, True),
    "rel_noadapt": (True, False),
    "abs": (False, False),
}
GEN_OUTPUTS = ("prediction", "occlusion_map", "deformation", "mask", "sparse_deformed")


@pytest.fixture(scope="module")
def ref(fomm_fixtures):
    with np.load(fomm_fixtures / "small-parity.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def small(fomm_fixtures):
    return load_checkpoint(fomm_fixtures / "small-cpk.pth.tar", fomm_fixtures / "small-config.yaml")


def _kp(value, jacobian):
    return {"value": torch.from_numpy(np.asarray(value)), "jacobian": torch.from_numpy(np.asarray(jacobian))}


def _close(actual, expected, atol, what):
    actual = actual.detach().numpy() if hasattr(actual, "detach") else np.asarray(actual)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} vs {expected.shape}"
    err = float(np.abs(actual - expected).max())
    assert err <= atol, f"{what}: max abs difference {err:.3g} > {atol}"


def test_modules_are_the_public_types_in_eval_mode(small):
    kp, gen = small
    assert isinstance(kp, KPDetector) and isinstance(gen, OcclusionAwareGenerator)
    assert not kp.training and not gen.training
    assert all(not m.training for m in gen.modules())


def test_keypoints_and_jacobians(small, ref):
    kp, _ = small
    with torch.no_grad():
        src = kp(torch.from_numpy(ref["source"]))
        _close(src["value"], ref["kp_source_value"], 1e-5, "kp_source value")
        _close(src["jacobian"], ref["kp_source_jacobian"], 1e-5, "kp_source jacobian")
        for t in range(ref["driving"].shape[0]):
            out = kp(torch.from_numpy(ref["driving"][t:t + 1]))
            _close(out["value"], ref["kp_driving_value"][t], 1e-5, f"kp_driving value frame {t}")
            _close(out["jacobian"], ref["kp_driving_jacobian"][t], 1e-5, f"kp_driving jacobian frame {t}")


@pytest.mark.parametrize("run", RUNS)
def test_normalized_keypoints(small, ref, run):
    kp, _ = small
    relative, adapt = RUNS[run]
    with torch.no_grad():
        kp_source = kp(torch.from_numpy(ref["source"]))
        initial = kp(torch.from_numpy(ref["driving"][0:1]))
        for t in range(ref["driving"].shape[0]):
            driving = kp(torch.from_numpy(ref["driving"][t:t + 1]))
            norm = normalize_kp(kp_source=kp_source, kp_driving=driving, kp_driving_initial=initial,
                                adapt_movement_scale=adapt, use_relative_movement=relative,
                                use_relative_jacobian=relative)
            _close(norm["value"], ref[f"{run}__kp_norm_value"][t], 1e-5, f"{run} kp_norm value {t}")
            _close(norm["jacobian"], ref[f"{run}__kp_norm_jacobian"][t], 1e-5, f"{run} kp_norm jacobian {t}")


@pytest.mark.parametrize("align_corners", [True, False], ids=["align_corners_true", "align_corners_false"])
@pytest.mark.parametrize("run", RUNS)
def test_generator_outputs(fomm_fixtures, ref, run, align_corners):
    kp, gen = load_checkpoint(fomm_fixtures / "small-cpk.pth.tar", fomm_fixtures / "small-config.yaml",
                              align_corners=align_corners)
    prefix = "" if align_corners else "gsac0__"
    source = torch.from_numpy(ref["source"])
    kp_source = _kp(ref["kp_source_value"], ref["kp_source_jacobian"])
    with torch.no_grad():
        for t in range(ref["driving"].shape[0]):
            kp_norm = _kp(ref[f"{run}__kp_norm_value"][t], ref[f"{run}__kp_norm_jacobian"][t])
            out = gen(source, kp_driving=kp_norm, kp_source=kp_source)
            for key in GEN_OUTPUTS + ("deformed",):
                tol = 1e-4
                _close(out[key], ref[f"{prefix}{run}__{key}"][t], tol, f"{prefix}{run} {key} frame {t}")


def test_align_corners_choice_matters(small, ref):
    """The two grid_sample conventions must give visibly different output (the test can fail)."""
    kp, gen = small
    source = torch.from_numpy(ref["source"])
    kp_source = _kp(ref["kp_source_value"], ref["kp_source_jacobian"])
    kp_norm = _kp(ref["abs__kp_norm_value"][3], ref["abs__kp_norm_jacobian"][3])
    with torch.no_grad():
        a = gen(source, kp_driving=kp_norm, kp_source=kp_source)["prediction"]
        gen.set_align_corners(False)
        try:
            b = gen(source, kp_driving=kp_norm, kp_source=kp_source)["prediction"]
        finally:
            gen.set_align_corners(True)
    assert float((a - b).abs().max()) > 1e-2


def test_vox256_manifest(fomm_fixtures):
    manifest = json.loads((fomm_fixtures / "vox-256-manifest.json").read_text())
    kp, gen = build_models(FommConfig.from_dict(manifest["config_vox_256"]))
    for name, module in (("generator", gen), ("kp_detector", kp)):
        spec = manifest[name]
        sd = module.state_dict()
        expected = spec["state_dict"]
        assert list(sd) == list(expected), f"{name}: state_dict keys/order differ"
        for key, tensor in sd.items():
            assert list(tensor.shape) == expected[key]["shape"], f"{name}.{key} shape"
            assert str(tensor.dtype).removeprefix("torch.") == expected[key]["dtype"], f"{name}.{key} dtype"
        params = dict(module.named_parameters())
        kinds = {k: ("parameter" if k in params else "buffer") for k in sd}
        assert kinds == {k: v["kind"] for k, v in expected.items()}, f"{name}: parameter/buffer kinds"
        assert len(sd) == spec["num_state_dict_keys"]
        assert sum(p.numel() for p in module.parameters()) == spec["num_parameters"]
        by_top = {}
        for key, p in module.named_parameters():
            by_top[key.split(".")[0]] = by_top.get(key.split(".")[0], 0) + p.numel()
        assert by_top == spec["parameters_by_top_level_module"]
    assert (sum(p.numel() for p in gen.parameters()) + sum(p.numel() for p in kp.parameters())
            == manifest["parameter_counts"]["total"])
