"""Run ``engine.evaluation.evaluate`` on every source x driver pair and print a markdown table.

    python benchmarks/quality_table.py [--media ../shared/media] [--engine mesh] [--max-frames N]
                                       [--sources s0,s9] [--drivers d3] [--sheets DIR] [--json OUT]

Columns: eye / mouth correlation and amplitude ratio (output std / driver std), head-pose correlation
per axis the driver moves more than 3° (others shown in parentheses), output faces found, jitter ratio
(output / driver), and the targets each pair misses. A summary with the worst pairs follows.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.evaluation import evaluate  # noqa: E402
from engine.metrics import POSE_AXES  # noqa: E402
from engine.portrait import load_portrait  # noqa: E402


def _f(x, digits=2):
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _key(p: Path):
    return int("".join(c for c in p.stem if c.isdigit()) or 0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--media", type=Path, default=REPO.parent / "shared" / "media")
    ap.add_argument("--engine", default="mesh")
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--sources", default="")
    ap.add_argument("--drivers", default="")
    ap.add_argument("--sheets", type=Path, default=None, help="write a contact sheet per pair here")
    ap.add_argument("--json", type=Path, default=None, help="write every report here as JSON")
    args = ap.parse_args(argv)

    sources = sorted((args.media / "sources").glob("*.jpg"), key=_key)
    drivers = sorted((args.media / "driving").glob("*.mp4"), key=_key)
    if args.sources:
        sources = [s for s in sources if s.stem in args.sources.split(",")]
    if args.drivers:
        drivers = [d for d in drivers if d.stem in args.drivers.split(",")]

    print("| source | driver | frames | faces | eye r | eye amp | mouth r | mouth amp | yaw r | pitch r | roll r | jitter | engine ms | misses |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    reports = []
    t0 = time.time()
    for src in sources:
        portrait = load_portrait(src)
        for drv in drivers:
            sheet = args.sheets / f"{src.stem}_{drv.stem}.png" if args.sheets else None
            r = evaluate(src, drv, engine=args.engine, max_frames=args.max_frames, contact_sheet_path=sheet,
                         portrait=portrait)
            reports.append(r)
            pose = []
            for axis in POSE_AXES:
                c = _f(r.pose_corr.get(axis))
                pose.append(c if axis in r.moving_axes else f"({c})")
            print(f"| {src.stem} | {drv.stem} | {r.frames} | {r.output_faces} | {_f(r.eye_corr)} | {_f(r.eye_amplitude)} "
                  f"| {_f(r.mouth_corr)} | {_f(r.mouth_amplitude)} | {' | '.join(pose)} | {_f(r.jitter_ratio)} "
                  f"| {_f(r.engine_ms, 1)} | {'; '.join(r.failures()) or 'ok'} |", flush=True)
    _summary(reports, time.time() - t0)
    if args.json:
        args.json.write_text(json.dumps([r.to_dict() for r in reports], indent=1))
    return 0


def _summary(reports, seconds):
    import numpy as np

    if not reports:
        return
    print()
    print(f"{len(reports)} pairs, {sum(r.ok for r in reports)} meet every target ({seconds:.0f} s).")
    checks = {
        "eye corr >= 0.85": [r.eye_corr >= 0.85 for r in reports],
        "mouth corr >= 0.90": [r.mouth_corr >= 0.90 for r in reports],
        "eye amplitude 0.7-1.3": [0.7 <= r.eye_amplitude <= 1.3 for r in reports],
        "mouth amplitude 0.7-1.3": [0.7 <= r.mouth_amplitude <= 1.3 for r in reports],
        "pose corr >= 0.90 (moving axes)": [all(r.pose_corr.get(a, float('nan')) >= 0.9 for a in r.moving_axes) for r in reports],
        "face in every output frame": [r.output_faces == r.frames for r in reports],
        "jitter ratio <= 1": [r.jitter_ratio <= 1 for r in reports],
    }
    for name, ok in checks.items():
        print(f"- {name}: {sum(ok)}/{len(ok)}")
    med = lambda xs: float(np.nanmedian(np.array(xs, float)))  # noqa: E731
    print(f"- medians: eye r {med([r.eye_corr for r in reports]):.2f}, eye amp {med([r.eye_amplitude for r in reports]):.2f}, "
          f"mouth r {med([r.mouth_corr for r in reports]):.2f}, mouth amp {med([r.mouth_amplitude for r in reports]):.2f}, "
          f"jitter {med([r.jitter_ratio for r in reports]):.2f}")
    worst = sorted(reports, key=lambda r: len(r.failures()), reverse=True)[:8]
    print("- most misses: " + ", ".join(f"{r.source}×{r.driving} ({len(r.failures())})" for r in worst))


if __name__ == "__main__":
    raise SystemExit(main())
