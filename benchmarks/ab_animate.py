"""The animate stage of two builds, timed in one process on the same frames, alternately.

    python benchmarks/ab_animate.py --base REV [--source s42] [--driving d9] [--frames 300] [--full-size]

`puppetcam bench` run twice on these VMs drifts by more than most engine changes are worth (the same
build's s42 took 13.9-18.6 ms a frame in three runs of one afternoon). Here the mesh animator of git
revision REV (its `engine/` extracted to a temporary package) and of the working tree render the same
recorded targets frame by frame, alternately, twice over: drift hits both alike. Each animator is
also given each frame's driving face first (untimed, as the pipeline's motion stage does), and the
first frame's as its calibration, so both close lids and open the mouth the same way. Prints both
medians and their ratio, and on how many frames the two builds' outputs differ (a change meant to
be faster only must read 0); ``--base HEAD`` on a clean tree reads about 1.00.
"""
from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from engine.animators.mesh import MeshAnimator  # noqa: E402
from engine.capture import VideoFileSource  # noqa: E402
from engine.compositing import CompositorSettings  # noqa: E402
from engine.pipeline import Pipeline, PipelineSettings  # noqa: E402
from engine.portrait import load_portrait  # noqa: E402


def import_base(rev: str, into: Path):
    """``engine/`` of ``rev`` as the package ``engine_base``: (MeshAnimator, load_portrait, Keypoints,
    FaceLandmarks)."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "engine"], check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    package = into / "engine_base"
    (into / "engine").rename(package)
    for path in package.rglob("*.py"):
        text = path.read_text()
        text = re.sub(r"\b(from|import) engine\b", r"\1 engine_base", text)
        path.write_text(text.replace('"engine.', '"engine_base.'))
    sys.path.insert(0, str(into))
    from engine_base.animators.mesh import MeshAnimator as BaseAnimator
    from engine_base.motion import Keypoints as BaseKeypoints
    from engine_base.portrait import load_portrait as base_load
    from engine_base.tracking import FaceLandmarks as BaseFace
    return BaseAnimator, base_load, BaseKeypoints, BaseFace


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="git revision to compare the working tree with")
    ap.add_argument("--media", default=str(REPO.parent / "shared" / "media"))
    ap.add_argument("--source", default="s42")
    ap.add_argument("--driving", default="d9")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--full-size", action="store_true",
                    help="animate the portrait at its own size (default: fitted to a 1280x720 output, as bench does)")
    args = ap.parse_args(argv)
    media = Path(args.media)
    with tempfile.TemporaryDirectory() as tmp:
        BaseAnimator, base_load, BaseKeypoints, BaseFace = import_base(args.base, Path(tmp))
        source = media / "sources" / f"{args.source}.jpg"
        output = None if args.full_size else (1280, 720)
        pipeline = Pipeline(MeshAnimator(), load_portrait(source),
                            PipelineSettings(compositor=CompositorSettings(output_size=output)))
        portrait, base_portrait = pipeline.portrait, base_load(source)  # the pipeline fits it to the output
        if base_portrait.size != portrait.size:
            base_portrait = base_portrait.resized(portrait.size)
        recorded = []  # (driving face, target keypoints)
        for frame in VideoFileSource(media / "driving" / f"{args.driving}.mp4"):
            result = pipeline.process(frame)
            if not result.held:
                recorded.append((result.face, pipeline._last_target))
            if len(recorded) >= args.frames:
                break
        # both fresh: the pipeline's own animator has already followed every driving face (its blink
        # state and driver fit would differ from a new one's)
        new, base = MeshAnimator(), BaseAnimator()
        new.set_source(portrait)
        base.set_source(base_portrait)
        new_ms, base_ms = [], []
        differ, worst = 0, 0  # frames whose outputs differ between the builds, the largest difference
        for _ in range(2):
            for i, (face, target) in enumerate(recorded):
                new_driving = new.driving_keypoints(None, face)
                base_driving = base.driving_keypoints(None, BaseFace(face.points, face.image_size))
                if i == 0:  # calibrated on the first frame, as the pipeline's was (the mouth's width
                    # at rest starts here: without it neither build scales the mouth's opening)
                    new.reference_keypoints(new_driving)
                    base.reference_keypoints(base_driving)
                base_target = BaseKeypoints(value=target.value, jacobian=target.jacobian)
                t0 = time.perf_counter()
                new_out = new.render(target)
                t1 = time.perf_counter()
                base_out = base.render(base_target)
                t2 = time.perf_counter()
                new_ms.append((t1 - t0) * 1e3)
                base_ms.append((t2 - t1) * 1e3)
                diff = int(np.abs(new_out.astype(np.int16) - base_out).max())
                differ, worst = differ + (diff > 0), max(worst, diff)
        pipeline.close()
    b, n = float(np.median(base_ms)), float(np.median(new_ms))
    print(f"{args.source} x {args.driving}, {len(recorded)} frames x 2, portrait {portrait.size[0]}x{portrait.size[1]}: "
          f"animate median {args.base} {b:.2f} ms, working tree {n:.2f} ms, ratio {n / b:.3f}; "
          f"outputs differ on {differ} of {len(base_ms)} frames (largest difference {worst} levels)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
