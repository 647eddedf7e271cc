"""Puppetcam's command line: ``render``, ``bench`` and ``eval``; no subcommand starts the GUI.

    puppetcam render --source IMG --driving VIDEO|demo -o OUT.mp4 [--engine mesh] [--absolute]
                     [--no-adapt-scale] [--max-frames N]
    puppetcam bench  --source IMG --driving VIDEO|demo [--engine mesh] [--frames N] [--json]
                     [--output-size WxH]
    puppetcam eval   --source IMG --driving VIDEO [--json] [--contact-sheet PNG] [--max-frames N]
    puppetcam [--source IMG] [--camera ...] ...      the desktop app (flags parsed by the app)

Exit codes: 0 ok; 2 bad input or unusable output, explained in one line on stderr (never a
traceback for a user's mistake); 130 interrupted. This module only wires the stages together.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

from engine.errors import PuppetcamError

SUBCOMMANDS = ("render", "bench", "eval")
EXIT_OK, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 2, 130


class UsageError(PuppetcamError):
    """A flag combination that cannot work (reported like any other bad input)."""


# ----------------------------------------------------------------------------- parser
def _size(text: str) -> tuple[int, int] | None:
    if text.lower() in ("source", "portrait", "none"):
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT (e.g. 1280x720) or 'source', not {text!r}")
    if w < 2 or h < 2 or w > 8192 or h > 8192:
        raise argparse.ArgumentTypeError(f"output size {w}x{h} is out of range (2..8192)")
    return w, h


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit 2 with one line (no usage dump to wade through)."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _engine_args(p: argparse.ArgumentParser) -> None:
    from engine.animators import ENGINES

    p.add_argument("--engine", default="mesh", choices=ENGINES, help="animation engine (default: mesh)")
    g = p.add_argument_group("fomm engine")
    g.add_argument("--checkpoint", metavar="P", help="FOMM checkpoint (.pth.tar / .safetensors)")
    g.add_argument("--config", metavar="C", help="FOMM config (.yaml)")
    g.add_argument("--random-weights", action="store_true",
                   help="FOMM with random weights (for speed tests only: the output is noise)")
    g.add_argument("--device", choices=("cpu", "cuda"), help="where FOMM runs (default: cpu)")
    g.add_argument("--backend", choices=("torch", "onnx"),
                   help="FOMM runtime: torch (default) or ONNX Runtime with the best provider found")
    g.add_argument("--fp16", action="store_true",
                   help="FOMM on CUDA in half precision (falls back to fp32 on NaN/Inf or a blank frame)")


def _motion_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--absolute", action="store_true",
                   help="absolute motion: the driver's face shape and pose, not its motion since frame 1")
    p.add_argument("--no-adapt-scale", action="store_true",
                   help="do not scale the motion by the portrait/driver face-size ratio")
    p.add_argument("--zeroth-order", action="store_true",
                   help="keypoint displacement only (no local affine Jacobians)")
    p.add_argument("--no-smoothing", action="store_true", help="no One-Euro filtering of the driving landmarks")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="puppetcam", description="Animate a still portrait from a driving face.",
                     epilog="Without a subcommand, puppetcam starts the desktop app "
                            "(flags such as --source, --camera, --start-recording are the app's).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="{render,bench,eval}", parser_class=_Parser)

    r = sub.add_parser("render", help="render a clip of the portrait driven by a video or the demo driver",
                       description="Render an H.264 MP4 at the driver's fps and frame count, the "
                                   "portrait's resolution.")
    r.add_argument("--source", required=True, metavar="IMG", help="portrait image")
    r.add_argument("--driving", required=True, metavar="VIDEO|demo",
                   help="driving video, or 'demo' for the built-in procedural driver (10 s at 30 fps)")
    r.add_argument("-o", "--output", required=True, metavar="OUT.mp4", help="clip to write")
    r.add_argument("--max-frames", type=_positive_int, metavar="N", help="render at most N frames")
    r.add_argument("--seed", type=int, default=0, help="seed of the demo driver (default 0)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    _engine_args(r)
    _motion_args(r)

    b = sub.add_parser("bench", help="time each stage of the pipeline",
                       description="Per-stage median ms (decode, track, motion, animate, composite, "
                                   "encode), end-to-end fps, peak RSS.")
    b.add_argument("--source", required=True, metavar="IMG")
    b.add_argument("--driving", required=True, metavar="VIDEO|demo")
    b.add_argument("--frames", type=_positive_int, default=300, metavar="N",
                   help="frames to time, after 10 warm-up frames (default 300; the video loops)")
    b.add_argument("--output-size", type=_size, default=(1280, 720), metavar="WxH",
                   help="compositor output size (default 1280x720; 'source' = the portrait's size)")
    b.add_argument("--no-encode", action="store_true", help="skip the H.264 encode stage")
    b.add_argument("--fomm-paths", action="store_true",
                   help="fomm: also time the networks alone (keypoints, plain/fast generator, ONNX)")
    b.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    _engine_args(b)
    _motion_args(b)

    e = sub.add_parser("eval", help="quality metrics of driver vs output, and a contact sheet",
                       description="Eye/mouth openness correlation and amplitude, head pose, jitter; "
                                   "writes a PNG contact sheet (driver | output).")
    e.add_argument("--source", required=True, metavar="IMG")
    e.add_argument("--driving", required=True, metavar="VIDEO")
    e.add_argument("--max-frames", type=_positive_int, metavar="N")
    e.add_argument("--contact-sheet", metavar="PNG",
                   help="where to write the contact sheet (default: eval-<source>-<driving>.png here)")
    e.add_argument("--every-n", type=_positive_int, metavar="N", help="contact sheet: every Nth frame")
    e.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    _engine_args(e)
    return parser


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("puppetcam")
    except Exception:  # noqa: BLE001 - not installed: running from a checkout
        return "0.1.0"


# ----------------------------------------------------------------------------- helpers
def engine_options(args) -> dict:
    """``--checkpoint/--config/--random-weights/--device`` as ``create_animator`` options (fomm only).

    ``--random-weights`` becomes ``models=(kp_detector, generator)`` with the official vox-256
    dimensions and random weights, so the fomm engine can be timed without a checkpoint.
    """
    flags = {"checkpoint": args.checkpoint, "config": args.config,
             "random_weights": args.random_weights or None, "device": getattr(args, "device", None),
             "backend": getattr(args, "backend", None), "fp16": getattr(args, "fp16", False) or None}
    given = {k: v for k, v in flags.items() if v is not None}
    if given and args.engine != "fomm":
        names = ", ".join("--" + k.replace("_", "-") for k in given)
        raise UsageError(f"{names} need --engine fomm")
    if args.random_weights and (args.checkpoint or args.config):
        raise UsageError("--random-weights replaces --checkpoint/--config: give one or the other")
    options = {k: v for k, v in given.items() if k != "random_weights"}
    if args.random_weights:
        options["models"] = random_fomm_models()
    return options


def random_fomm_models(seed: int = 0):
    """(kp_detector, generator) of vox-256 size with random weights (speed tests only)."""
    try:
        import torch

        from engine.fomm import build_models
        from engine.fomm.bench import vox256_model_params
    except ImportError as exc:
        raise PuppetcamError(f"the fomm engine needs the neural extra (pip install 'puppetcam[neural]'): {exc}") from None
    torch.manual_seed(seed)
    kp, gen = build_models(vox256_model_params())
    with torch.no_grad():  # non-trivial BatchNorm statistics, as engine.fomm.bench does
        g = torch.Generator().manual_seed(seed)
        for m in list(kp.modules()) + list(gen.modules()):
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.05, generator=g)
                m.running_var.uniform_(0.3, 1.0, generator=g)
    return kp, gen


def pipeline_settings(args, output_size=None):
    from engine.compositing import CompositorSettings
    from engine.filters import OneEuroSettings
    from engine.motion import MotionSettings
    from engine.pipeline import PipelineSettings

    return PipelineSettings(
        motion=MotionSettings(relative=not getattr(args, "absolute", False),
                              adapt_scale=not getattr(args, "no_adapt_scale", False),
                              first_order=not getattr(args, "zeroth_order", False)),
        smoothing=None if getattr(args, "no_smoothing", False) else OneEuroSettings(),
        compositor=CompositorSettings(output_size=output_size),
    )


def _check_output_dir(path: Path, what: str) -> None:
    from engine.sinks.recorder import ensure_writable

    try:
        ensure_writable(path)
    except PuppetcamError as exc:
        raise type(exc)(str(exc).replace("cannot write clip", f"cannot write {what}")) from None


def _check_engine_can_drive(engine: str, driving: str) -> None:
    """Engines that read the driving image (fomm) cannot run on the landmark-only demo driver;
    checked from the engine's class, before anything is loaded."""
    if str(driving) != "demo" or engine == "mesh":
        return
    needs_image = True
    if engine == "fomm":
        try:
            from engine.animators.fomm import FommAnimator

            needs_image = FommAnimator.needs_driving_image
        except ImportError:
            return  # create_animator explains what is missing
    if needs_image:
        raise UsageError(f"the {engine} engine needs driving images; "
                         "the demo driver gives landmarks only: use a driving video")


def _fmt_duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{int(seconds // 60)} min {seconds % 60:.0f} s"


@contextlib.contextmanager
def _quiet_native_logs(enabled: bool = True):
    """Send what native libraries (MediaPipe/TFLite, FFmpeg) print to fd 2 to /dev/null, while
    Python's own ``sys.stderr`` (progress bar, error line) still reaches the terminal."""
    try:
        fd = sys.stderr.fileno() if enabled else -1
    except (AttributeError, OSError, ValueError):
        fd = -1
    if fd != 2 or os.environ.get("PUPPETCAM_NATIVE_LOGS"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    old_stderr = sys.stderr
    try:
        os.dup2(devnull, 2)
        sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1, encoding=old_stderr.encoding or "utf-8",
                               errors="backslashreplace")
        yield
    finally:
        try:
            sys.stderr.flush()
            sys.stderr.close()
        except OSError:
            pass
        sys.stderr = old_stderr
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _progress(total: int | None, desc: str, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total or None, desc=desc, unit="frame", file=sys.stderr, disable=quiet,
                dynamic_ncols=True, leave=False)


# ----------------------------------------------------------------------------- render
def cmd_render(args) -> int:
    from engine.animators import create_animator
    from engine.bench import open_driver
    from engine.pipeline import Pipeline
    from engine.portrait import load_portrait
    from engine.sinks.recorder import ClipRecorder

    out = Path(args.output)
    _check_output_dir(out, "clip")  # before any work: a typo in -o costs nothing
    _check_engine_can_drive(args.engine, args.driving)
    options = engine_options(args)
    driver = open_driver(args.driving, args.max_frames, seed=args.seed)
    portrait = load_portrait(args.source)
    animator = create_animator(args.engine, **options)
    runs_on = getattr(animator, "provider", "")  # neural engines: what runs the networks
    pipeline = Pipeline(animator, portrait, pipeline_settings(args))

    if args.driving == "demo":
        total = driver.n_frames
    else:
        total = driver.info.frame_count or None
        if total and args.max_frames:
            total = min(total, args.max_frames)
    width, height = portrait.size
    recorder = ClipRecorder(out, width, height, fps=driver.fps)
    bar = _progress(total, f"render {out.name}", args.quiet)
    start = time.perf_counter()
    frames = 0
    try:
        # The next frame is read and tracked while this one is warped; on any error the helper
        # thread is joined (closing) before the pipeline closes its tracker.
        with contextlib.closing(pipeline.run(driver)) as results:
            for result in results:
                recorder.write(result.animated)
                frames += 1
                bar.update(1)
        recorder.close()
    except KeyboardInterrupt:
        bar.close()
        _close_quietly(recorder)
        print(f"interrupted: {frames} frames written to {out}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BaseException:
        bar.close()
        _close_quietly(recorder)
        raise
    finally:
        pipeline.close()
    bar.close()
    elapsed = time.perf_counter() - start
    if frames == 0:
        out.unlink(missing_ok=True)
        name = Path(args.driving).name
        raise PuppetcamError(f"no frames could be read from the driving video {name}")
    w, h = recorder.width, recorder.height
    parts = [f"rendered {frames} frames, {w}x{h} at {driver.fps:g} fps "
             f"({_fmt_duration(frames / driver.fps)} of video) in {_fmt_duration(elapsed)} "
             f"({frames / max(elapsed, 1e-9):.1f} fps) -> {out}",
             f"frames without a face held: {pipeline.frames_without_face}"]
    if runs_on:
        parts.append(f"{animator.name} on {runs_on}")
    if driver.truncated:
        why = f" ({driver.error})" if getattr(driver, "error", "") else ""
        parts.append(f"truncated input: {Path(args.driving).name} is cut off or damaged{why}; "
                     f"rendered the {frames} readable frames")
    print("; ".join(parts))
    return EXIT_OK


def _close_quietly(recorder) -> None:
    try:
        recorder.close()
    except PuppetcamError:
        pass


# ----------------------------------------------------------------------------- bench
def cmd_bench(args) -> int:
    from engine.bench import progress_steps, run_bench

    if args.fomm_paths and args.engine != "fomm":
        raise UsageError("--fomm-paths applies to --engine fomm only")
    _check_engine_can_drive(args.engine, args.driving)
    options = engine_options(args)
    bars = []  # made on the first frame, so input errors print alone

    def progress(n: int) -> None:
        if not bars:
            bars.append(_progress(progress_steps(args.frames), "bench", args.quiet or args.json))
        bars[0].update(1)

    try:
        result = run_bench(args.source, args.driving, engine=args.engine, frames=args.frames,
                           output_size=args.output_size, encode=not args.no_encode,
                           engine_options=options, settings=pipeline_settings(args), progress=progress)
    finally:
        for bar in bars:
            bar.close()
    data = result.to_dict()
    if args.fomm_paths:
        from engine.fomm.bench import run_bench as fomm_paths

        data["fomm_paths"] = fomm_paths(checkpoint=args.checkpoint, config=args.config,
                                        random_weights=args.random_weights, device=args.device or "cpu")
    if args.json:
        print(json.dumps(data, default=_json_default))
    else:
        print("\n".join(result.summary_lines()))
        for key, value in data.get("fomm_paths", {}).items():
            print(f"  fomm {key}: {value:.2f}" if isinstance(value, float) else f"  fomm {key}: {value}")
    return EXIT_OK


# ----------------------------------------------------------------------------- eval
def cmd_eval(args) -> int:
    import inspect

    options = engine_options(args)
    sheet = Path(args.contact_sheet) if args.contact_sheet else Path(
        f"eval-{Path(args.source).stem}-{Path(args.driving).stem}.png")
    _check_output_dir(sheet, "contact sheet")
    if args.driving == "demo":
        raise UsageError("eval needs a driving video (it compares the driver's face with the output's)")
    try:
        from engine.evaluation import evaluate
    except ImportError as exc:
        if getattr(exc, "name", "") == "engine.evaluation":
            raise PuppetcamError("eval is not available in this build (engine.evaluation is missing)") from None
        raise
    kwargs = dict(engine=args.engine, max_frames=args.max_frames, contact_sheet_path=sheet)
    params = inspect.signature(evaluate).parameters
    if args.every_n is not None:
        kwargs["every_n"] = args.every_n
    if options:
        if "engine_options" not in params:
            raise UsageError("eval cannot pass --checkpoint/--config/--random-weights to the engine yet "
                             "(engine.evaluation.evaluate takes no engine options)")
        kwargs["engine_options"] = options
    report = evaluate(args.source, args.driving, **kwargs)
    data = _report_dict(report)
    if args.json:
        print(json.dumps(data, default=_json_default))
    else:
        print("\n".join(_report_lines(data)))
        print(f"contact sheet: {sheet}")
    return EXIT_OK


def _report_lines(d: dict) -> list[str]:
    """A QualityReport as a few readable lines (unknown fields are listed as they are)."""
    def f(key, fmt="{:.2f}"):
        v = d.get(key)
        return "n/a" if v is None else (fmt.format(v) if isinstance(v, (int, float)) else str(v))

    known = {"source", "driving", "engine", "frames", "driver_faces", "output_faces", "eye_corr",
             "eye_amplitude", "mouth_corr", "mouth_amplitude", "pose_corr", "pose_range_deg",
             "pose_error_deg", "jitter_output", "jitter_driver", "jitter_ratio", "engine_ms",
             "contact_sheet", "moving_axes", "measurable_axes", "pose_control", "failures", "geometry",
             "geometry_jitter_ratio", "geometry_misses"}
    lines = [f"eval: {d.get('engine', '?')} engine, {d.get('source', '?')} x {d.get('driving', '?')}, "
             f"{d.get('frames', '?')} frames (face found: driver {d.get('driver_faces', '?')}, "
             f"output {d.get('output_faces', '?')})",
             f"  eyes:  correlation {f('eye_corr')}, amplitude ratio {f('eye_amplitude')}",
             f"  mouth: correlation {f('mouth_corr')}, amplitude ratio {f('mouth_amplitude')}"]
    corr, rng, err = d.get("pose_corr") or {}, d.get("pose_range_deg") or {}, d.get("pose_error_deg") or {}
    control = d.get("pose_control") or {}
    for axis in corr:
        c, m = corr.get(axis), control.get(axis)
        lines.append(f"  {axis:<5}  correlation {'n/a' if c is None else f'{c:.2f}'}, driver range "
                     f"{rng.get(axis, float('nan')):.1f} deg, mean error {err.get(axis, float('nan')):.1f} deg"
                     + ("" if m is None else f", mirror control {m:.2f}"))
    lines.append(f"  jitter: output {f('jitter_output', '{:.3f}')}, driver {f('jitter_driver', '{:.3f}')}, "
                 f"ratio {f('jitter_ratio')}")
    lines.append(f"  engine: {f('engine_ms')} ms per frame (median, tracking excluded)")
    geometry = d.get("geometry")
    if geometry:
        g = {k: "n/a" if v is None else f"{v:.2f}" for k, v in geometry.items()}
        lines.append(f"  posed landmarks (no tracker; not targets): eyes {g['eye_corr']} / {g['eye_amplitude']}, "
                     f"mouth {g['mouth_corr']} / {g['mouth_amplitude']} (correlation / amplitude), "
                     f"jitter ratio {f('geometry_jitter_ratio')}")
    for key, value in d.items():
        if key not in known:
            lines.append(f"  {key}: {value}")
    failures = d.get("failures")
    if failures is not None:
        lines.append("targets: all met" if not failures else "targets missed: " + "; ".join(failures))
    return lines


def _report_dict(report) -> dict:
    import dataclasses

    if hasattr(report, "to_dict"):
        return report.to_dict()
    if dataclasses.is_dataclass(report):
        return dataclasses.asdict(report)
    return dict(vars(report))


def _json_default(value):
    import numpy as np

    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)


# ----------------------------------------------------------------------------- GUI
def run_gui(argv: list[str]) -> int:
    try:
        from app.main import main as app_main
    except ImportError as exc:
        if getattr(exc, "name", None) in ("app", "app.main"):
            print("puppetcam: the desktop app is not available yet; use 'puppetcam render --help'")
            return EXIT_OK
        print(f"puppetcam: cannot start the desktop app: {exc}", file=sys.stderr)
        return 1
    return int(app_main(argv) or 0)


# ----------------------------------------------------------------------------- main
COMMANDS = {"render": cmd_render, "bench": cmd_bench, "eval": cmd_eval}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help", "--version")):
        return run_gui(argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (already printed)
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help()
        return EXIT_OK
    with _quiet_native_logs():
        try:
            return COMMANDS[args.command](args)
        except PuppetcamError as exc:
            print(f"puppetcam {args.command}: error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
