"""How much of the output's jitter is the tracker's, not the animation's.

    python benchmarks/jitter_control.py --pairs s12:d3,s2:d18 [--media ../shared/media] [--max-frames 300]

The quality table's jitter is the output re-tracked by Face Mesh (``engine.metrics.jitter``: median
landmark second difference in inter-ocular distances), against the driver's. Per pair this runs the
mesh engine on the driver as ``puppetcam eval`` does and reports, on the same frames:

- **driver**: the driver's jitter, raw tracker (the target's reference);
- **output** and its **target geometry**: the output re-tracked, and the engine's own target landmarks
  (what it warps to: no tracker involved);
- **head motion alone**: the portrait moved by the head's motion only (the similarity the target's
  rigid points make with the portrait's, frame by frame), applied as a plain ``cv2.warpAffine`` with
  no expression and no mesh, then re-tracked; and that motion's own geometry.

Where "head motion alone" already reads at or above the driver's jitter, the tracker on a moving
portrait shakes that much by itself, whatever the animation does. It is a measurement, not a target.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine import metrics  # noqa: E402
from engine.animators import create_animator  # noqa: E402
from engine.animators.mesh.animator import RIGID_IDX  # noqa: E402
from engine.animators.mesh.similarity import as_matrix, fit_similarity  # noqa: E402
from engine.capture import VideoFileSource  # noqa: E402
from engine.pipeline import Pipeline, PipelineSettings  # noqa: E402
from engine.portrait import load_portrait  # noqa: E402
from engine.tracking import FaceLandmarks, FaceTracker  # noqa: E402


def _points(face) -> np.ndarray | None:
    return face.points if isinstance(face, FaceLandmarks) else None


def measure(source: Path, driving: Path, max_frames: int | None = 300) -> dict:
    portrait = load_portrait(source)
    h, w = portrait.image.shape[:2]
    animator = create_animator("mesh")
    pipeline = Pipeline(animator, portrait, PipelineSettings())
    trackers = {name: FaceTracker(still=False) for name in ("driver", "output", "head_motion_alone")}
    seqs = {name: [] for name in ("driver", "output", "target_geometry", "head_motion_alone",
                                  "head_motion_geometry")}
    src = portrait.landmarks.points[:, :2].astype(np.float64)
    for frame in VideoFileSource(driving, max_frames=max_frames):
        result = pipeline.process(frame)
        target = animator.target_points(pipeline._last_target)
        head = as_matrix(*fit_similarity(src[RIGID_IDX], target[RIGID_IDX]))
        moved = cv2.warpAffine(portrait.image, head, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        for name, image in (("driver", frame.image), ("output", result.animated), ("head_motion_alone", moved)):
            seqs[name].append(_points(trackers[name].track(image, frame.t_capture)))
        seqs["target_geometry"].append(target)
        seqs["head_motion_geometry"].append(src @ head[:, :2].T + head[:, 2])
    for tracker in trackers.values():
        tracker.close()
    jitter = {name: metrics.jitter(seq) for name, seq in seqs.items()}
    return {"source": source.name, "driving": driving.name, "frames": len(seqs["driver"]), **jitter,
            **{f"{k}_over_driver": jitter[k] / jitter["driver"]
               for k in ("output", "target_geometry", "head_motion_alone")}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", default="s12:d3,s2:d18", help="source:driver,... (names in the media folders)")
    ap.add_argument("--media", default=str(REPO.parent / "shared" / "media"))
    ap.add_argument("--max-frames", type=int, default=300)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    media = Path(args.media)
    print("| source | driver | driver | output | target geometry | head motion alone | its geometry |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for pair in args.pairs.split(","):
        s, d = pair.split(":")
        r = measure(media / "sources" / f"{s}.jpg", media / "driving" / f"{d}.mp4", args.max_frames)
        rows.append(r)
        print(f"| {s} | {d} | {r['driver']:.4f} | {r['output']:.4f} ({r['output_over_driver']:.2f}) | "
              f"{r['target_geometry']:.4f} ({r['target_geometry_over_driver']:.2f}) | "
              f"{r['head_motion_alone']:.4f} ({r['head_motion_alone_over_driver']:.2f}) | "
              f"{r['head_motion_geometry']:.4f} |", flush=True)
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
