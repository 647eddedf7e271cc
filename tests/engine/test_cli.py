"""The command line's contract: flags, exit codes, one-line errors, JSON, the GUI hand-off."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import av
import cv2
import pytest

from engine import cli

REPO = Path(__file__).resolve().parents[2]


def run(capsys, *args) -> tuple[int, str, str]:
    rc = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def small_portrait(media, tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "mona-small.jpg"
    image = cv2.imread(str(media / "sources" / "s9.jpg"))
    cv2.imwrite(str(path), cv2.resize(image, (361, 641), interpolation=cv2.INTER_AREA))  # odd on purpose
    return path


def test_help_lists_the_contract_flags(capsys):
    rc, out, _ = run(capsys, "--help")
    assert rc == 0 and all(word in out for word in ("render", "bench", "eval"))
    rc, out, _ = run(capsys, "render", "--help")
    assert rc == 0
    for flag in ("--source", "--driving", "--output", "--engine", "--absolute", "--no-adapt-scale",
                 "--max-frames", "--checkpoint", "--config", "--random-weights"):
        assert flag in out
    rc, out, _ = run(capsys, "bench", "--help")
    for flag in ("--frames", "--json", "--output-size", "--engine"):
        assert flag in out
    rc, out, _ = run(capsys, "eval", "--help")
    for flag in ("--json", "--contact-sheet", "--max-frames"):
        assert flag in out
    rc, out, _ = run(capsys, "--version")
    assert rc == 0 and out.startswith("puppetcam ")


@pytest.mark.parametrize("args, needle", [
    (["render", "--source", "x.jpg"], "required"),
    (["render", "--source", "x.jpg", "--driving", "demo", "-o", "o.mp4", "--engine", "nope"], "invalid choice"),
    (["render", "--source", "x.jpg", "--driving", "demo", "-o", "o.mp4", "--max-frames", "0"], "at least 1"),
    (["bench", "--source", "x.jpg", "--driving", "demo", "--output-size", "big"], "WIDTHxHEIGHT"),
    (["bench", "--source", "x.jpg", "--driving", "demo", "--frames", "ten"], "whole number"),
])
def test_usage_errors_exit_2_with_one_line(capsys, args, needle):
    rc, out, err = run(capsys, *args)
    assert rc == 2 and out == ""
    assert needle in one_line(err)


def test_missing_inputs_exit_2(capsys, small_portrait, tmp_path):
    rc, _, err = run(capsys, "render", "--source", tmp_path / "none.jpg", "--driving", "demo",
                     "-o", tmp_path / "a.mp4")
    assert rc == 2 and "source image not found" in one_line(err)
    rc, _, err = run(capsys, "render", "--source", small_portrait, "--driving", tmp_path / "none.mp4",
                     "-o", tmp_path / "a.mp4")
    assert rc == 2 and "driving video not found" in one_line(err)
    rc, _, err = run(capsys, "bench", "--source", small_portrait, "--driving", tmp_path / "none.mp4")
    assert rc == 2 and "driving video not found" in one_line(err)


def test_fomm_flags_need_the_fomm_engine(capsys, small_portrait, media, tmp_path):
    rc, _, err = run(capsys, "render", "--source", small_portrait, "--driving", "demo", "-o", tmp_path / "a.mp4",
                     "--checkpoint", "vox.pth.tar", "--config", "vox-256.yaml")
    assert rc == 2 and "--checkpoint, --config need --engine fomm" in one_line(err)
    assert not (tmp_path / "a.mp4").exists()
    rc, _, err = run(capsys, "render", "--source", small_portrait, "--driving", media / "driving" / "d0.mp4",
                     "-o", tmp_path / "a.mp4", "--engine", "fomm", "--random-weights", "--checkpoint", "x.pth")
    assert rc == 2 and "--random-weights replaces --checkpoint/--config" in one_line(err)
    rc, _, err = run(capsys, "bench", "--source", small_portrait, "--driving", "demo", "--fomm-paths")
    assert rc == 2 and "--fomm-paths applies to --engine fomm only" in one_line(err)


def test_fomm_cannot_run_on_the_demo_driver(capsys, small_portrait, tmp_path):
    rc, _, err = run(capsys, "render", "--source", small_portrait, "--driving", "demo", "-o", tmp_path / "a.mp4",
                     "--engine", "fomm", "--random-weights", "--max-frames", "2")
    line = one_line(err)
    assert rc == 2
    try:
        import engine.animators.fomm  # noqa: F401
    except ImportError:
        assert "fomm engine" in line  # not installed/built yet: says so
    else:
        assert "needs driving images" in line


def test_render_demo_in_a_subprocess(small_portrait, tmp_path):
    """The real program, end to end: summary on stdout, H.264 at the driver's fps, even size."""
    out = tmp_path / "demo.mp4"
    result = subprocess.run([sys.executable, "-m", "engine", "render", "--source", str(small_portrait),
                             "--driving", "demo", "--max-frames", "20", "-o", str(out)],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    summary = result.stdout.strip().splitlines()
    assert len(summary) == 1
    assert summary[0].startswith("rendered 20 frames, 360x640 at 30 fps")
    assert "frames without a face held: 0" in summary[0]
    with av.open(str(out)) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.codec_context.width, stream.codec_context.height) == (360, 640)
        assert float(stream.average_rate) == 30
        assert sum(1 for _ in c.decode(video=0)) == 20


def test_console_script_entry_point():
    """pyproject's ``puppetcam`` script points at this main; when installed, it runs."""
    import importlib
    import tomllib

    target = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]["puppetcam"]
    module, _, attr = target.partition(":")
    assert getattr(importlib.import_module(module), attr) is cli.main
    exe = shutil.which("puppetcam", path=str(Path(sys.executable).parent))
    if exe is not None:  # a plain checkout without `pip install -e .` has no script to run
        result = subprocess.run([exe, "render", "--help"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "--driving" in result.stdout


def test_bench_json_last_line(capsys, small_portrait, media):
    rc, out, err = run(capsys, "bench", "--source", small_portrait, "--driving", media / "driving" / "d0.mp4",
                       "--frames", "12", "--json", "--output-size", "640x360")
    assert rc == 0, err
    data = json.loads(out.strip().splitlines()[-1])
    assert set(data["stages"]) == {"decode", "track", "motion", "animate", "composite", "encode"}
    assert all(v >= 0 for v in data["stages"].values())
    assert data["stages"]["track"] > 0.3 and data["stages"]["animate"] > 0.1  # real work was timed
    assert data["ms_per_frame"] >= data["stages"]["animate"]
    assert data["fps"] > 0 and data["peak_rss_mb"] > 50
    # one frame at a time: 1000 / the mean engine path, which is at least its median's order
    assert 0 < data["sequential_fps"] <= 2000 / data["ms_per_frame"]
    assert data["frames"] == 12 and data["output_size"] == [640, 360]


def test_bench_progress_covers_both_passes(small_portrait):
    """The progress bar runs to the end of the second pass too: a slow engine (FOMM on a CPU) would
    otherwise sit on a full bar for as long again."""
    from engine.bench import progress_steps, run_bench

    seen = []
    result = run_bench(small_portrait, "demo", frames=10, output_size=(320, 180), encode=False,
                       progress=seen.append)
    assert seen == list(range(1, 2 * (10 + result.warmup) + 1))
    assert progress_steps(10) == len(seen)  # the bar's length (cmd_bench)


def test_bench_human_with_the_demo_driver(capsys, small_portrait):
    rc, out, err = run(capsys, "bench", "--source", small_portrait, "--driving", "demo", "--frames", "10",
                       "--no-encode", "--quiet")
    assert rc == 0, err
    assert "output 1280x720" in out and "peak RSS" in out
    assert "animate" in out and "encode" not in out.split("engine path")[0]
    assert "one frame at a time" in out and "next frame tracked while this one is animated" in out


def test_eval_json_and_contact_sheet(capsys, small_portrait, media, tmp_path):
    pytest.importorskip("engine.evaluation", reason="engine.evaluation is not in this checkout")
    sheet = tmp_path / "sheet.png"
    rc, out, err = run(capsys, "eval", "--source", small_portrait, "--driving", media / "driving" / "d0.mp4",
                       "--max-frames", "8", "--json", "--contact-sheet", sheet)
    assert rc == 0, err
    data = json.loads(out.strip().splitlines()[-1])
    assert data["frames"] == 8
    for key in ("eye_corr", "mouth_corr", "eye_amplitude", "mouth_amplitude", "pose_corr"):
        assert key in data
    # the mesh engine's posed landmarks, measured beside the output
    assert set(data["geometry"]) == {"eye_corr", "eye_amplitude", "mouth_corr", "mouth_amplitude", "jitter"}
    assert data["geometry"]["jitter"] > 0 and "geometry_misses" in data
    image = cv2.imread(str(sheet))
    assert image is not None and image.shape[0] > 64 and image.shape[1] > 64
    rc, out, err = run(capsys, "eval", "--source", small_portrait, "--driving", media / "driving" / "d0.mp4",
                       "--max-frames", "8", "--contact-sheet", sheet)
    assert rc == 0, err
    posed = [line for line in out.splitlines() if line.strip().startswith("posed landmarks (no tracker")]
    assert len(posed) == 1 and "jitter ratio" in posed[0] and "n/a, n/a" not in posed[0]
    rc, _, err = run(capsys, "eval", "--source", small_portrait, "--driving", media / "driving" / "d0.mp4",
                     "--contact-sheet", tmp_path / "no" / "dir" / "s.png")
    assert rc == 2 and "cannot write contact sheet" in one_line(err)
    rc, _, err = run(capsys, "eval", "--source", small_portrait, "--driving", "demo")
    assert rc == 2 and "needs a driving video" in one_line(err)


def test_no_subcommand_hands_argv_to_the_app(capsys, monkeypatch):
    calls = []
    fake = types.ModuleType("app.main")
    fake.main = lambda argv=None: calls.append(argv) or 7
    monkeypatch.setitem(sys.modules, "app.main", fake)
    gui_args = ["--source", "assets/avatars/mona-lisa.jpg", "--camera", "demo", "--start-recording",
                "--record-to", "/tmp/clip.mp4", "--quit-after", "1", "--minimized"]
    assert cli.main(gui_args) == 7
    assert cli.main([]) == 7
    assert calls == [gui_args, []]


def test_no_subcommand_without_the_app(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "app.main", None)  # import fails as if app/main.py did not exist
    assert cli.main(["--camera", "0"]) == 0
    assert "not available" in capsys.readouterr().out


def test_motion_flags_change_the_render(capsys, small_portrait, media, tmp_path):
    """--absolute and --no-adapt-scale reach the motion stage: each gives a different clip."""
    def last_frame(*flags):
        out = tmp_path / f"m{len(flags)}{'-'.join(flags)}.mp4"
        rc, _, err = run(capsys, "render", "--source", small_portrait, "--driving", media / "driving" / "d0.mp4",
                         "--max-frames", "30", "-o", out, "--quiet", *flags)
        assert rc == 0, err
        with av.open(str(out)) as c:
            return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)][-1].astype(int)

    relative = last_frame()
    absolute = last_frame("--absolute")
    unscaled = last_frame("--no-adapt-scale")
    assert abs(relative - absolute).mean() > 0.5
    assert abs(relative - unscaled).mean() > 0.1


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_render_with_a_fomm_checkpoint(capsys, small_portrait, media, fomm_fixtures, tmp_path, backend):
    """The official-format checkpoint through the CLI: the clip has the driver's frames at the
    portrait's (even) size, and the summary says what ran the networks."""
    out = tmp_path / "fomm.mp4"
    rc, stdout, err = run(capsys, "render", "--source", small_portrait, "--driving", media / "driving" / "d0.mp4",
                          "-o", out, "--engine", "fomm", "--checkpoint", fomm_fixtures / "small-cpk.pth.tar",
                          "--config", fomm_fixtures / "small-config.yaml", "--backend", backend,
                          "--max-frames", "6", "--quiet")
    assert rc == 0, err
    expected = "fomm on torch cpu" if backend == "torch" else "fomm on onnxruntime CPUExecutionProvider"
    assert expected in stdout
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 6 and frames[0].shape == (640, 360, 3)
    # The face is redrawn by the network and pasted back; away from it the portrait stays as it was.
    from engine.portrait import load_portrait

    portrait = load_portrait(small_portrait)
    still = portrait.image[:640, :360].astype(int)
    x0, y0, x1, y1 = (int(v) for v in portrait.landmarks.bbox())
    out0 = frames[-1].astype(int)
    assert abs(out0[y0:y1, x0:x1] - still[y0:y1, x0:x1]).mean() > 10
    assert abs(out0[-60:, :60] - still[-60:, :60]).mean() < 3
