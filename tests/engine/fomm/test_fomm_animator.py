"""FOMM runtime (fp16 fallback, ONNX backend) and the Animator adapter (crop, animate, paste back)."""
import numpy as np
import pytest
import torch

from engine.animators.fomm import FommAnimator
from engine.fomm import load_checkpoint
from engine.fomm.crop import crop_image, face_crop, feather_mask, paste_back
from engine.fomm.runtime import FommRuntime, output_is_bad
from engine.motion import MotionSettings, RelativeMotion
from engine.portrait import Portrait
from engine.tracking import FaceLandmarks


@pytest.fixture(scope="module")
def models(fomm_fixtures):
    return load_checkpoint(fomm_fixtures / "small-cpk.pth.tar", fomm_fixtures / "small-config.yaml")


@pytest.fixture(scope="module")
def ref(fomm_fixtures):
    with np.load(fomm_fixtures / "small-parity.npz") as data:
        return {k: data[k] for k in data.files}


def _portrait(ref, width=200, height=160):
    """The fixture's source (64x64 astronaut) placed into a larger grey portrait, with fake landmarks
    whose box makes the 64-px crop land exactly on it."""
    image = np.full((height, width, 3), 90, np.uint8)
    face = (ref["source"][0].transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8)
    x0, y0 = 70, 40
    image[y0:y0 + 64, x0:x0 + 64] = face
    rng = np.random.default_rng(0)
    pts = np.zeros((478, 3), np.float32)
    pts[:, 0] = x0 + 16 + rng.uniform(0, 32, 478)
    pts[:, 1] = y0 + 16 + rng.uniform(0, 32, 478)
    pts[:2, :2] = [[x0 + 16, y0 + 16], [x0 + 48, y0 + 48]]  # the box: 32 px, crop = 2 x 32 = 64 px
    return Portrait(image=image, landmarks=FaceLandmarks(points=pts, image_size=(width, height)), name="t")


def test_feather_mask_shape():
    m = feather_mask(64)
    assert m.shape == (64, 64) and m[32, 32] == pytest.approx(1.0) and m[0, 0] < 0.01 and m[0, 32] < 0.1


def test_crop_and_paste_back_roundtrip():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (120, 150, 3), dtype=np.uint8)
    pts = np.array([[50, 40], [90, 80]], np.float32)
    crop = face_crop(pts, (150, 120), size=80, scale=2.0, shift_up=0.0)
    patch = crop_image(image, crop)
    assert patch.shape == (80, 80, 3)
    # scale 1: the crop is a pure translation, so pixels are copied exactly
    assert np.array_equal(patch[20:60, 20:60], image[40:80, 50:90])
    out = paste_back(np.zeros_like(image), np.full_like(patch, 200), crop, feather_mask(80))
    assert out[60, 70].tolist() == [200, 200, 200]  # centre: the crop
    assert out[0, 0].tolist() == [0, 0, 0] and out[119, 149].tolist() == [0, 0, 0]  # outside: the base


def _paste_whole_frame(base, crop_rgb, crop, mask):
    """The plain definition: warp crop and mask to the whole portrait, blend every pixel in float."""
    import cv2

    w, h = crop.image_size
    warped = cv2.warpAffine(crop_rgb, crop.inverse, (w, h), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(mask, crop.inverse, (w, h), flags=cv2.INTER_LINEAR)[..., None]
    return np.clip(base * (1 - alpha) + warped * alpha + 0.5, 0, 255).astype(np.uint8), alpha[..., 0]


@pytest.mark.parametrize("box", [(300, 200, 700, 640), (-150, -120, 200, 260), (820, 500, 1100, 900),
                                 (1200, 900, 1500, 1300)])
def test_paste_back_blends_only_the_crops_footprint(box):
    """Inside the portrait, in a corner, off its edge, wholly outside: within one level of the
    whole-frame blend everywhere, and the portrait untouched where the mask is 0."""
    rng = np.random.default_rng(2)
    base = rng.integers(0, 255, (800, 1000, 3), dtype=np.uint8)
    crop = face_crop(np.array(box, np.float32).reshape(2, 2), (1000, 800), size=96, scale=1.6, shift_up=0.1)
    patch = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
    mask = feather_mask(96)
    out = paste_back(base, patch, crop, mask)
    expected, alpha = _paste_whole_frame(base, patch, crop, mask)
    assert out.shape == base.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - expected).max() <= 1
    assert np.array_equal(out[alpha == 0], base[alpha == 0])
    assert (alpha > 0.99).any() == (box[0] < 1000 and box[1] < 800)
    assert out is not base and not np.shares_memory(out, base)


def test_output_is_bad():
    assert output_is_bad(torch.full((1, 3, 8, 8), float("nan")))
    assert output_is_bad(torch.full((1, 3, 8, 8), 0.5))
    assert not output_is_bad(torch.rand(1, 3, 8, 8))


def test_fp16_falls_back_to_fp32_when_output_is_bad(models, ref):
    kp, gen = models
    runtime = FommRuntime(kp, gen)
    runtime.set_source(torch.from_numpy(ref["source"]))
    driving = runtime.keypoints(torch.from_numpy(ref["driving"][2:3]))
    expected = runtime.animate(driving)["prediction"]
    runtime.fp16 = True  # as on CUDA; the fp16 attempt is made to return NaN
    real = runtime.fast.animate
    calls = []

    def broken_then_real(*args, **kwargs):
        out = real(*args, **kwargs)
        if not calls:
            out = dict(out, prediction=torch.full_like(out["prediction"], float("nan")))
        calls.append(1)
        return out

    runtime.fast.animate = broken_then_real
    out = runtime.animate(driving)["prediction"]
    assert runtime.fp16_fell_back and not runtime.fp16 and len(calls) == 2
    assert torch.equal(out, expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available on this machine")
def test_cuda_fp32_and_fp16(models, ref):
    """Measured on an H200 (torch 2.11): exact fp32 within 1e-6 of the CPU; TF32 convolutions (the
    default) keypoints 2.4e-4, prediction 1.6e-3; fp16 autocast within 5e-2."""
    kp, gen = models
    source = torch.from_numpy(ref["source"])
    cpu = FommRuntime(kp, gen)
    cpu_kp = cpu.set_source(source)
    driving = cpu.keypoints(torch.from_numpy(ref["driving"][3:4]))
    a = cpu.animate(driving)["prediction"]
    for tf32, kp_tol, prediction_tol in ((False, 1e-5, 2e-5), (True, 1e-3, 1 / 255)):
        cuda = FommRuntime(kp, gen, device="cuda", tf32=tf32)
        cuda_kp = cuda.set_source(source)
        assert float((cpu_kp["value"] - cuda_kp["value"]).abs().max()) < kp_tol, tf32
        b = cuda.animate(driving)["prediction"].cpu()
        assert float((a - b).abs().max()) < prediction_tol, tf32
    half = FommRuntime(kp, gen, device="cuda", fp16=True)
    half.set_source(source)
    c = half.animate(driving)["prediction"].cpu()
    assert float((a - c).abs().max()) < 5e-2
    kp.cpu(), gen.cpu()


def test_tf32_choice_holds_during_each_call_and_is_put_back(models, ref):
    """cuDNN's TF32 switch is process-wide: the runtime sets its own choice for each call only."""
    kp, gen = models
    seen = []
    hook = kp.register_forward_hook(lambda *_: seen.append(torch.backends.cudnn.allow_tf32))
    before = torch.backends.cudnn.allow_tf32
    try:
        for tf32 in (False, True):
            runtime = FommRuntime(kp, gen, tf32=tf32)
            runtime.set_source(torch.from_numpy(ref["source"]))
            runtime.keypoints(torch.from_numpy(ref["driving"][1:2]))
            assert seen and set(seen) == {tf32} and torch.backends.cudnn.allow_tf32 == before
            seen.clear()
    finally:
        hook.remove()


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_animator_renders_full_portrait(models, ref, backend):
    if backend == "onnx":
        pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    portrait = _portrait(ref)
    animator = FommAnimator(models=models, size=64, crop_scale=2.0, crop_shift_up=0.0,
                            backend=backend)
    source_kp = animator.set_source(portrait)
    # The crop is exactly the fixture source, so its keypoints are the fixture's.
    assert np.abs(source_kp.value - ref["kp_source_value"][0]).max() < 2e-2
    motion = RelativeMotion(MotionSettings(relative=True, adapt_scale=True))
    motion.set_source(source_kp)
    frames = []
    for t in (0, 3):
        driver = _portrait({"source": ref["driving"][t:t + 1]})
        kp_driving = animator.driving_keypoints(driver.image, driver.landmarks)
        frames.append(animator.render(motion(kp_driving)))
    for out in frames:
        assert out.shape == portrait.image.shape and out.dtype == np.uint8
        assert np.array_equal(out[:30], portrait.image[:30])  # far from the face: untouched
    # frame 0 is the calibration frame (target = source keypoints); frame 3 moves the face
    assert np.abs(frames[0].astype(int) - frames[1].astype(int)).max() > 20
    inner = (slice(56, 88), slice(86, 118))
    assert np.abs(frames[0][inner].astype(int) - frames[1][inner].astype(int)).mean() > 2
    animator.close()


def test_random_weights_animator_is_full_vox256_and_seeded(fomm_fixtures):
    """``puppetcam bench --engine fomm --random-weights``: no file, the built-in vox-256 config."""
    import json

    from engine.fomm import VOX256_MODEL_PARAMS, build_random_models

    manifest = json.loads((fomm_fixtures / "vox-256-manifest.json").read_text())
    assert VOX256_MODEL_PARAMS == manifest["config_vox_256"]["model_params"]
    animator = FommAnimator(random_weights=True, seed=3)
    nets = {"kp_detector": animator.runtime.kp_detector, "generator": animator.runtime.generator}
    for name, module in nets.items():
        sd = module.state_dict()
        assert {k: list(v.shape) for k, v in sd.items()} == {
            k: v["shape"] for k, v in manifest[name]["state_dict"].items()}, name
    animator.close()
    # seeded (checked on the small config, cheaper to build): the same seed gives the same weights
    # and BatchNorm statistics, another seed others; the global RNG is left untouched
    from engine.fomm import FommConfig

    small = FommConfig.from_yaml(fomm_fixtures / "small-config.yaml")
    state = torch.random.get_rng_state()
    (kp_a, gen_a), (kp_b, gen_b), (kp_c, _) = (build_random_models(small, seed=s) for s in (3, 3, 4))
    assert torch.equal(torch.random.get_rng_state(), state)
    for a, b in ((kp_a, kp_b), (gen_a, gen_b)):
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    key = "predictor.encoder.down_blocks.0.conv.weight"
    assert not torch.equal(kp_c.state_dict()[key], kp_a.state_dict()[key])
    bn = "predictor.encoder.down_blocks.0.norm.running_var"
    assert not torch.allclose(kp_a.state_dict()[bn], torch.ones_like(kp_a.state_dict()[bn]))


# ----------------------------------------------------------------------------- crops of real portraits
def _box(crop):
    """The crop square in image pixel coordinates, (x0, y0, x1, y1): crop pixel centres are at
    integer crop coordinates (OpenCV's convention), so the square spans -0.5 .. size - 0.5."""
    lo, hi = -0.5, crop.size - 0.5
    (x0, x1), (y0, y1) = (crop.inverse @ np.array([[lo, hi], [lo, hi], [1, 1]], np.float64))
    return x0, y0, x1, y1


def _check_render(animator, portrait, motion_kp):
    out = animator.render(motion_kp)
    assert out.shape == portrait.image.shape and out.dtype == np.uint8
    crop = animator._crop
    h, w = portrait.image.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    u = crop.matrix[0, 0] * xs + crop.matrix[0, 1] * ys + crop.matrix[0, 2]
    v = crop.matrix[1, 0] * xs + crop.matrix[1, 1] * ys + crop.matrix[1, 2]
    # the paste-back samples the crop bilinearly: image pixels farther than one crop pixel from the
    # crop's pixel centres get nothing of it, and must be the portrait, bit for bit
    outside = (u <= -1) | (v <= -1) | (u >= crop.size) | (v >= crop.size)
    assert outside.any()
    assert np.array_equal(out[outside], portrait.image[outside])
    # the feathered mask: half-way from the crop edge to its centre the animation shows fully
    near = (np.abs(u - crop.size / 2) < crop.size / 4) & (np.abs(v - crop.size / 2) < crop.size / 4)
    assert np.abs(out[near].astype(int) - portrait.image[near]).mean() > 1
    return out


@pytest.fixture(scope="module")
def real_portraits(media):
    from engine.portrait import load_portrait

    return {name: load_portrait(media / "sources" / f"{name}.jpg") for name in ("s0", "s2", "s12")}


def test_crop_on_real_portraits(models, real_portraits):
    """Face crop of real portraits (s2 is 2048 px: a 3.6x shrink): the face sits inside the crop,
    pixels outside the crop square are untouched after paste-back, and the crop is anti-aliased."""
    for name, portrait in real_portraits.items():
        animator = FommAnimator(models=models, size=64)
        kp = animator.set_source(portrait)
        crop = animator._crop
        h, w = portrait.image.shape[:2]
        x0, y0, x1, y1 = _box(crop)
        assert x1 - x0 == pytest.approx(y1 - y0)  # square, no distortion
        # the landmark box maps inside the crop, centred horizontally
        lm = portrait.landmarks.xy[:, :2] @ crop.matrix[:, :2].T + crop.matrix[:, 2]
        assert lm.min() > 0 and lm.max() < crop.size, name
        inside = x0 >= 0 and y0 >= 0 and x1 <= w and y1 <= h
        patch = crop_image(portrait.image, crop)
        if inside:  # the crop is a (filtered) resample of the square: compare with an area resize
            import cv2

            ref = cv2_area_crop(portrait.image, (x0, y0, x1, y1), crop.size).astype(float)
            err = np.abs(patch - ref).mean()
            assert np.abs(patch.mean((0, 1)) - ref.mean((0, 1))).max() < 2 and err < 12, name
            if crop.matrix[0, 0] < 0.66:  # shrinking: closer to the area average than plain bilinear
                aliased = cv2.warpAffine(portrait.image, crop.matrix, (crop.size, crop.size),
                                         flags=cv2.INTER_LINEAR).astype(float)
                assert err < np.abs(aliased - ref).mean(), name
        out = _check_render(animator, portrait, kp)  # target = source keypoints: a near-identity
        centre = tuple(int(v) for v in ((y0 + y1) / 2, (x0 + x1) / 2))
        assert out[centre].shape == (3,)
        animator.close()


def cv2_area_crop(image, box, size):
    import cv2

    x0, y0, x1, y1 = box
    sub = image[int(round(y0)):int(round(y1)), int(round(x0)):int(round(x1))]
    return cv2.resize(sub, (size, size), interpolation=cv2.INTER_AREA)


def test_crop_is_antialiased_when_shrinking():
    """A 1-px checkerboard shrunk 4x must come out flat grey (no aliasing), as skimage's
    anti-aliased resize in the official demo gives."""
    board = ((np.indices((400, 400)).sum(0) % 2) * 255).astype(np.uint8)
    image = np.repeat(board[..., None], 3, axis=2)
    crop = face_crop(np.array([[150, 150], [250, 250]], np.float32), (400, 400), size=64, scale=2.56,
                     shift_up=0.0)
    assert crop.matrix[0, 0] == pytest.approx(0.25)
    patch = crop_image(image, crop).astype(float)
    assert abs(patch.mean() - 127.5) < 3 and patch.std() < 4


def test_crop_of_face_touching_the_border(models, real_portraits):
    """s0 cut so that the top of the face (and part of the crop square) is outside the image: the
    crop pads by replicating the border row, the render keeps the portrait's size, and only
    pixels under the crop square change."""
    from engine.tracking import FaceLandmarks

    full = real_portraits["s0"]
    top = int(full.landmarks.xy[:, 1].min()) + 10  # cut through the forehead
    image = np.ascontiguousarray(full.image[top:])
    pts = full.landmarks.points.copy()
    pts[:, 1] -= top
    h, w = image.shape[:2]
    portrait = Portrait(image=image, landmarks=FaceLandmarks(points=pts, image_size=(w, h)), name="cut")
    animator = FommAnimator(models=models, size=64)
    kp = animator.set_source(portrait)
    crop = animator._crop
    x0, y0, x1, y1 = _box(crop)
    assert y0 < -5 and 0 <= x0 and x1 <= w  # the square sticks out at the top only
    patch = crop_image(image, crop)
    # crop rows that sample above the image (y < 0) replicate the top row: all equal to each other
    rows_above = [v for v in range(crop.size) if (crop.inverse @ np.array([0, v + 1, 1.0]))[1] < 0]
    assert len(rows_above) >= 2
    assert all(np.array_equal(patch[rows_above[0]], patch[v]) for v in rows_above)
    out = _check_render(animator, portrait, kp)
    assert out.shape == image.shape
    # the top image row under the crop centre is inside the feathered mask (alpha near 1): it shows
    # the animation, so the crop's replicated padding meets the image border without a seam
    from engine.fomm.crop import feather_mask
    import cv2

    alpha = cv2.warpAffine(feather_mask(crop.size), crop.inverse, (w, h), flags=cv2.INTER_LINEAR)
    cx = int((x0 + x1) / 2)
    assert alpha[0, cx] > 0.5
    animator.close()
