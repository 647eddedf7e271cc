"""Time the FOMM engine's per-frame path on recorded driving frames: for a machine without MediaPipe.

    python benchmarks/fomm_replay.py record --source IMG --driving VIDEO -o REC.npz [--frames 150]
    python benchmarks/fomm_replay.py run REC.npz [--device cuda] [--fp16] [--checkpoint C --config Y]

``record`` (here, with MediaPipe) tracks the portrait and the driving video once and stores the
frames (JPEG) with their landmarks. ``run`` (anywhere torch is, e.g. the lent GPU machine, whose
Python has no MediaPipe) replays them through ``FommAnimator``: per frame the driving keypoints
(crop + keypoint detector), the relative motion and the render (generator + paste back into the
full portrait). The frames are decoded before timing. Weights are random (full vox-256 dims)
unless a checkpoint is given: the time does not depend on them. Medians in ms, and each frame's
output checksum so two runs (fp32 / fp16) can be compared.
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _jpeg(image: np.ndarray) -> np.ndarray:
    import cv2

    ok, data = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return data


def _unjpeg(data: np.ndarray) -> np.ndarray:
    import cv2

    return np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1])


def record(args) -> None:
    from engine.capture import VideoFileSource
    from engine.portrait import load_portrait
    from engine.tracking import FaceTracker, NoFace

    portrait = load_portrait(args.source)
    frames, points = [], []
    with FaceTracker(still=False) as tracker:
        for frame in VideoFileSource(args.driving, max_frames=args.frames):
            face = tracker.track(frame.image, frame.t_capture)
            if isinstance(face, NoFace):
                continue
            frames.append(_jpeg(frame.image))
            points.append(face.points)
    offsets = np.cumsum([0] + [len(f) for f in frames])
    np.savez(args.output, portrait=_jpeg(portrait.image), portrait_points=portrait.landmarks.points,
             frames=np.concatenate(frames), offsets=offsets, points=np.stack(points),
             names=np.array([Path(args.source).name, Path(args.driving).name]))
    print(f"recorded {len(frames)} frames of {args.driving} and {args.source} to {args.output}")


def run(args) -> dict:
    import torch

    from engine.animators.fomm import FommAnimator
    from engine.motion import MotionSettings, RelativeMotion
    from engine.portrait import Portrait
    from engine.tracking import FaceLandmarks

    with np.load(args.recording) as rec:
        data = {k: rec[k] for k in rec.files}
    image = _unjpeg(data["portrait"])
    size = (image.shape[1], image.shape[0])
    portrait = Portrait(image=image, landmarks=FaceLandmarks(points=data["portrait_points"], image_size=size),
                        name="portrait")
    offsets = data["offsets"]
    frames = [_unjpeg(data["frames"][offsets[i]:offsets[i + 1]]) for i in range(len(offsets) - 1)]
    faces = [FaceLandmarks(points=p, image_size=(f.shape[1], f.shape[0])) for p, f in zip(data["points"], frames)]
    animator = FommAnimator(checkpoint=args.checkpoint, config=args.config, device=args.device,
                            fp16=args.fp16, random_weights=args.checkpoint is None)
    t0 = time.perf_counter()
    source_kp = animator.set_source(portrait)
    set_source_ms = (time.perf_counter() - t0) * 1000
    motion = RelativeMotion(MotionSettings(relative=True, adapt_scale=True))
    motion.set_source(source_kp)
    stages = {"driving_keypoints": [], "motion": [], "render": [], "total": []}
    checksums = []
    for i, (frame, face) in enumerate(zip(frames, faces)):
        t0 = time.perf_counter()
        kp = animator.driving_keypoints(frame, face)  # returns numpy: the device has finished
        t1 = time.perf_counter()
        target = motion(kp)
        t2 = time.perf_counter()
        out = animator.render(target)  # returns the pasted-back numpy frame
        t3 = time.perf_counter()
        checksums.append(float(out.mean()))
        if i >= args.warmup:
            for name, a, b in (("driving_keypoints", t0, t1), ("motion", t1, t2), ("render", t2, t3),
                               ("total", t0, t3)):
                stages[name].append((b - a) * 1000)
    medians = {name: statistics.median(v) for name, v in stages.items()}
    result = {
        "device": args.device, "provider": animator.provider,
        "gpu": torch.cuda.get_device_name(0) if args.device == "cuda" else None,
        "torch": torch.__version__, "portrait": str(data["names"][0]), "driving": str(data["names"][1]),
        "portrait_size": list(size), "frames_timed": len(stages["total"]), "warmup": args.warmup,
        "set_source_ms": set_source_ms, "ms": medians, "fps": 1000 / medians["total"],
        "fp16_fell_back": animator.runtime.fp16_fell_back, "output_means": checksums,
    }
    print(json.dumps(result))
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("--source", required=True)
    rec.add_argument("--driving", required=True)
    rec.add_argument("-o", "--output", required=True)
    rec.add_argument("--frames", type=int, default=150)
    play = sub.add_parser("run")
    play.add_argument("recording")
    play.add_argument("--device", default="cpu")
    play.add_argument("--fp16", action="store_true")
    play.add_argument("--checkpoint")
    play.add_argument("--config")
    play.add_argument("--warmup", type=int, default=10)
    args = ap.parse_args(argv)
    record(args) if args.command == "record" else run(args)


if __name__ == "__main__":
    main()
