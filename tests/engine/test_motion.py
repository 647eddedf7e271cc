import numpy as np
import pytest
import torch

from engine.motion import Keypoints, MotionSettings, RelativeMotion, adapt_scale, hull_area, normalize_kp

RUNS = {
    "rel_adapt": dict(use_relative_movement=True, use_relative_jacobian=True, adapt_movement_scale=True),
    "rel_noadapt": dict(use_relative_movement=True, use_relative_jacobian=True, adapt_movement_scale=False),
    "abs": dict(use_relative_movement=False, use_relative_jacobian=False, adapt_movement_scale=False),
}


def test_hull_area_of_unit_square_with_inner_point():
    pts = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0.5]])
    assert hull_area(pts) == pytest.approx(1.0)


def test_hand_computed_relative_motion():
    src = {"value": np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]], np.float32)}  # area 2
    d0 = {"value": np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], np.float32)}  # area 0.5
    d = {"value": d0["value"] + np.array([0.5, -0.25], np.float32)}
    out = normalize_kp(src, d, d0, adapt_movement_scale=True, use_relative_movement=True)
    # alpha = sqrt(2)/sqrt(0.5) = 2, so the shift doubles
    np.testing.assert_allclose(out["value"], src["value"] + np.array([1.0, -0.5]), atol=1e-6)
    plain = normalize_kp(src, d, d0, use_relative_movement=True)
    np.testing.assert_allclose(plain["value"], src["value"] + np.array([0.5, -0.25]), atol=1e-6)
    absolute = normalize_kp(src, d, d0)
    assert absolute["value"] is d["value"]


def test_hand_computed_relative_jacobian():
    rot = np.array([[0.0, -1.0], [1.0, 0.0]])
    src = {"value": np.zeros((1, 2)), "jacobian": np.array([[[2.0, 0.0], [0.0, 2.0]]])}
    d0 = {"value": np.zeros((1, 2)), "jacobian": np.array([[[1.0, 0.0], [0.0, 1.0]]])}
    d = {"value": np.zeros((1, 2)), "jacobian": rot[None]}
    out = normalize_kp(src, d, d0, use_relative_movement=True, use_relative_jacobian=True)
    np.testing.assert_allclose(out["jacobian"][0], rot @ np.eye(2) @ (2 * np.eye(2)))


@pytest.mark.parametrize("run", sorted(RUNS))
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_reproduces_official_fomm_kp_norm(fomm_fixtures, run, backend):
    f = np.load(fomm_fixtures / "small-parity.npz")
    conv = torch.from_numpy if backend == "torch" else (lambda a: a)
    kp_source = {"value": conv(f["kp_source_value"]), "jacobian": conv(f["kp_source_jacobian"])}
    kp_initial = {"value": conv(f["kp_driving_initial_value"]), "jacobian": conv(f["kp_driving_initial_jacobian"])}
    for t in range(f["driving"].shape[0]):
        kp_driving = {"value": conv(f["kp_driving_value"][t]), "jacobian": conv(f["kp_driving_jacobian"][t])}
        out = normalize_kp(kp_source, kp_driving, kp_initial, **RUNS[run])
        value = np.asarray(out["value"])
        jac = np.asarray(out["jacobian"])
        np.testing.assert_allclose(value, f[f"{run}__kp_norm_value"][t], atol=1e-5, rtol=0)
        np.testing.assert_allclose(jac, f[f"{run}__kp_norm_jacobian"][t], atol=1e-5, rtol=0)


def test_adapt_scale_matches_fixture(fomm_fixtures):
    f = np.load(fomm_fixtures / "small-parity.npz")
    assert adapt_scale(f["kp_source_value"], f["kp_driving_initial_value"]) == pytest.approx(
        float(f["adapt_movement_scale"]), abs=1e-12)


@pytest.mark.parametrize("run", ["rel_adapt", "rel_noadapt", "abs"])
def test_relative_motion_stage_matches_fixture(fomm_fixtures, run):
    f = np.load(fomm_fixtures / "small-parity.npz")
    settings = MotionSettings(relative=run != "abs", adapt_scale=run == "rel_adapt")
    motion = RelativeMotion(settings)
    motion.set_source(Keypoints(f["kp_source_value"][0], f["kp_source_jacobian"][0]))
    motion.calibrate(Keypoints(f["kp_driving_initial_value"][0], f["kp_driving_initial_jacobian"][0]))
    for t in range(6):
        out = motion(Keypoints(f["kp_driving_value"][t, 0], f["kp_driving_jacobian"][t, 0]))
        np.testing.assert_allclose(out.value, f[f"{run}__kp_norm_value"][t, 0], atol=1e-5, rtol=0)
        np.testing.assert_allclose(out.jacobian, f[f"{run}__kp_norm_jacobian"][t, 0], atol=1e-5, rtol=0)


def test_relative_motion_first_frame_calibrates_and_reset():
    motion = RelativeMotion(MotionSettings(adapt_scale=False))
    src = np.array([[10.0, 10.0], [20.0, 10.0], [10.0, 20.0]])
    motion.set_source(Keypoints(src))
    d0 = src + 100
    np.testing.assert_allclose(motion(Keypoints(d0)).value, src)  # first frame = reference
    np.testing.assert_allclose(motion(Keypoints(d0 + 3)).value, src + 3)
    motion.reset()
    np.testing.assert_allclose(motion(Keypoints(d0 + 3)).value, src)


def test_zeroth_order_drops_jacobians():
    motion = RelativeMotion(MotionSettings(first_order=False, adapt_scale=False))
    motion.set_source(Keypoints(np.zeros((2, 2)), np.tile(2 * np.eye(2), (2, 1, 1))))
    out = motion(Keypoints(np.ones((2, 2)), np.tile(3 * np.eye(2), (2, 1, 1))))
    np.testing.assert_array_equal(out.jacobian, np.tile(np.eye(2), (2, 1, 1)))
