"""How much of a known motion the quality metrics' tracker reads back from the mesh engine's output.

    python benchmarks/tracker_readback.py [--sources s0,s4] [--media ../shared/media]

The portrait is warped by motions we know exactly, with no driver in between, and the warped frames
are re-tracked the way ``puppetcam eval`` tracks an output (Face Mesh, tracking mode):

- **pitch / yaw**: the portrait's own 3-D landmarks rotated about x / y (a nod / a turn of
  6·sin + 2·sin degrees over 120 frames) and projected, so the warp's targets are an exact rigid
  rotation of this face. Reported: correlation with the applied angle, gain (slope of read vs applied
  angle) and the residual's std in degrees.
- **lid gap**: both eyes' lid points scaled about the eye's midline by a factor (0.7 = 30 % narrower,
  1.3 = 30 % wider). Reported: the eye aspect ratio the warp's targets have, and what the tracker reads.

A gain below 1 means the tracker reads a 2-D warp of a 3-D motion short (a real nod also changes
shading and what the nose hides, which a warp does not). It explains why the quality table's pitch
and eye-amplitude numbers sit where they do; it is a measurement, not a target.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine import metrics  # noqa: E402
from engine.animators import create_animator  # noqa: E402
from engine.animators.mesh.triangulation import EYES  # noqa: E402
from engine.face_regions import RIGID  # noqa: E402
from engine.motion import Keypoints  # noqa: E402
from engine.portrait import load_portrait  # noqa: E402
from engine.tracking import FaceLandmarks, FaceTracker  # noqa: E402

FRAMES = 120
LID_FACTORS = (0.7, 0.85, 1.0, 1.15, 1.3)


def _rotation(axis: str, degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    if axis == "pitch":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rotation_readback(animator, points3: np.ndarray, axis: str) -> tuple[float, float, float]:
    """(correlation, gain, residual std °) of the tracker's angle on ``axis`` against the applied one."""
    centre = points3[list(RIGID)].mean(axis=0)
    i = np.arange(FRAMES)
    applied = 6 * np.sin(2 * np.pi * i / 40) + 2 * np.sin(2 * np.pi * i / 17)
    tracker = FaceTracker(still=False)
    read = []
    try:
        for k, angle in enumerate(applied):
            target = centre + (points3 - centre) @ _rotation(axis, angle).T
            frame = animator.render(Keypoints(value=target[:, :2].astype(np.float32)))
            face = tracker.track(frame, k / 30)
            read.append(face.points if isinstance(face, FaceLandmarks) else None)
    finally:
        tracker.close()
    pose = metrics.head_pose_series(read)[:, metrics.POSE_AXES.index(axis)]
    ok = np.isfinite(pose)
    x, y = applied[ok] - applied[0], pose[ok]
    gain = float(np.polyfit(x, y, 1)[0])
    return metrics.correlation(x, y), gain, float(np.std(y - gain * x))


def lid_readback(animator, points2: np.ndarray) -> list[tuple[float, float, float]]:
    """Per lid factor: (factor, target eye aspect ratio, tracked eye aspect ratio)."""
    tracker = FaceTracker(still=True)
    out = []
    try:
        for factor in LID_FACTORS:
            target = points2.copy()
            for upper, lower, _ in EYES:
                up, lo = list(upper[1:-1]), list(lower[1:-1])
                mid = 0.5 * (points2[up] + points2[lo])
                target[up] = mid + factor * (points2[up] - mid)
                target[lo] = mid + factor * (points2[lo] - mid)
            kp = Keypoints(value=target.astype(np.float32))
            face = tracker.track(animator.render(kp))
            read = metrics.eye_aspect_ratio(face.points) if isinstance(face, FaceLandmarks) else float("nan")
            out.append((factor, metrics.eye_aspect_ratio(animator.target_points(kp)), read))
    finally:
        tracker.close()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--media", type=Path, default=REPO.parent / "shared" / "media")
    ap.add_argument("--sources", default="s0,s3,s4")
    args = ap.parse_args(argv)
    print("| source | pitch r | pitch gain | pitch resid ° | yaw r | yaw gain | yaw resid ° | lid gap gain (0.7-1.3) | EAR target → read |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.sources.split(","):
        portrait = load_portrait(args.media / "sources" / f"{name}.jpg")
        animator = create_animator("mesh")
        animator.set_source(portrait)
        pts3 = np.asarray(portrait.landmarks.points, np.float64)
        pr, pg, ps = rotation_readback(animator, pts3, "pitch")
        yr, yg, ys = rotation_readback(animator, pts3, "yaw")
        lids = lid_readback(animator, pts3[:, :2])
        t = np.array([x[1] for x in lids])
        r = np.array([x[2] for x in lids])
        lid_gain = float(np.polyfit(t, r, 1)[0])
        ears = ", ".join(f"{f:.2f}: {a:.3f} → {b:.3f}" for f, a, b in lids)
        print(f"| {name} | {pr:.3f} | {pg:.2f} | {ps:.2f} | {yr:.3f} | {yg:.2f} | {ys:.2f} | {lid_gain:.2f} | {ears} |",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
