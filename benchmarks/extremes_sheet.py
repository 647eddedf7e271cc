"""A contact sheet of one portrait at each driver's extremes, for a person to look at.

    python benchmarks/extremes_sheet.py --source s7 --drivers d3,d6,d10,d11,d12 --out s7.png

``puppetcam eval``'s contact sheet shows every Nth frame of one driver; faults that show only at an
extreme (the widest mouth, a blink, the widest eyes, the largest turn or nod) fall between them.
This finds, per driver, the frame where its raw Face Mesh landmarks reach each extreme
(``engine.metrics``), runs the mesh engine over the driver as ``eval`` does, and tiles the output's
face at those frames: one row per driver, one column per extreme, the driver's face small in the
corner. The twelfth session found three faults this way: a shout's lower lip squeezed to a rim, and
the gaze drawing the lid into the eye, down in a wide-open eye and past the corner sideways.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine import metrics  # noqa: E402
from engine.animators import create_animator  # noqa: E402
from engine.capture import VideoFileSource  # noqa: E402
from engine.pipeline import Pipeline, PipelineSettings  # noqa: E402
from engine.portrait import load_portrait  # noqa: E402
from engine.tracking import FaceLandmarks, FaceTracker  # noqa: E402

EXTREMES = ("mouth", "blink", "wide", "yaw", "pitch")
TILE = 240


def extreme_frames(driving: Path, max_frames: int) -> dict[str, int]:
    """Per extreme, the frame index where the driver's raw landmarks reach it."""
    points = []
    with FaceTracker(still=False) as tracker:
        for frame in VideoFileSource(driving, max_frames=max_frames):
            face = tracker.track(frame.image, frame.t_capture)
            points.append(face.points if isinstance(face, FaceLandmarks) else None)
    eyes = np.array([metrics.eye_aspect_ratio(p) if p is not None else np.nan for p in points])
    mouth = np.array([metrics.mouth_aspect_ratio(p) if p is not None else np.nan for p in points])
    pose = np.abs(metrics.head_pose_series(points))
    return {"mouth": int(np.nanargmax(mouth)), "blink": int(np.nanargmin(eyes)), "wide": int(np.nanargmax(eyes)),
            "yaw": int(np.nanargmax(pose[:, 0])), "pitch": int(np.nanargmax(pose[:, 1]))}


def _square(image: np.ndarray, pts: np.ndarray, size: int) -> np.ndarray:
    """The square around the face ``pts`` (478, 2+), 1.3 times its height, resized to ``size``."""
    centre = pts[:468, :2].mean(axis=0)
    half = 0.65 * np.ptp(pts[:468, 1])
    h, w = image.shape[:2]
    x0, y0 = int(max(centre[0] - half, 0)), int(max(centre[1] - half, 0))
    x1, y1 = int(min(centre[0] + half, w)), int(min(centre[1] + half, h))
    return cv2.resize(image[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)


def driver_row(portrait, driving: Path, max_frames: int) -> np.ndarray:
    wanted = extreme_frames(driving, max_frames)
    tiles = {}
    animator = create_animator("mesh")
    pipeline = Pipeline(animator, portrait, PipelineSettings())
    try:
        for frame in VideoFileSource(driving, max_frames=max(wanted.values()) + 1):
            result = pipeline.process(frame)
            for kind in (k for k, i in wanted.items() if i == frame.index):
                target = animator.target_points(pipeline._last_target)  # where the face was warped to
                tile = _square(result.animated, target, TILE)
                if isinstance(result.face, FaceLandmarks):
                    tile[-TILE // 3:, -TILE // 3:] = _square(frame.image, result.face.points, TILE // 3)
                cv2.putText(tile, f"{driving.stem} {kind} {frame.index}", (4, TILE - 8),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 0), 1, cv2.LINE_AA)
                tiles[kind] = tile
    finally:
        pipeline.close()
    blank = np.zeros((TILE, TILE, 3), np.uint8)
    return np.hstack([tiles.get(k, blank) for k in EXTREMES])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--media", type=Path, default=REPO.parent / "shared" / "media")
    ap.add_argument("--source", required=True, help="portrait name in media/sources, e.g. s7")
    ap.add_argument("--drivers", default="d3,d6,d10,d11,d12")
    ap.add_argument("--max-frames", type=int, default=300)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    portrait = load_portrait(args.media / "sources" / f"{args.source}.jpg")
    rows = [driver_row(portrait, args.media / "driving" / f"{d}.mp4", args.max_frames)
            for d in args.drivers.split(",")]
    cv2.imwrite(str(args.out), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out}: rows {args.drivers}, columns {', '.join(EXTREMES)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
