"""The app animates with a FOMM checkpoint: the official-format small checkpoint of the fixtures
(real weights file, real config, loaded with weights_only=True) drives the live window."""
import numpy as np
import pytest

pytest.importorskip("torch", reason="the FOMM engine needs torch (the neural extra)")

from app.threads import SourceSpec  # noqa: E402
from tests.app.conftest import add_probe, wait_frames, wait_ready  # noqa: E402


def test_window_animates_with_a_fomm_checkpoint(qtbot, make_window, media, store, fomm_fixtures):
    store.setValue("engine", "fomm")
    store.setValue("fomm_checkpoint", str(fomm_fixtures / "small-cpk.pth.tar"))
    store.setValue("fomm_config", str(fomm_fixtures / "small-config.yaml"))
    w = make_window()
    w.start(SourceSpec("file", str(media / "driving" / "d9.mp4")))
    wait_ready(qtbot, w, timeout=60000)
    assert w.worker.pipeline.animator.name == "fomm"
    assert w.settings_panel.engine.currentData() == "fomm"
    probe = add_probe(w)
    wait_frames(qtbot, w, 6, probe, timeout=60000)
    frames = list(probe.frames)
    assert frames[-1].shape == (720, 1280, 3)
    # The face region changes from frame to frame (the network redraws it); the rest is the portrait.
    change = np.abs(frames[-1].astype(int) - frames[0].astype(int))
    assert change.max() > 20
    assert w.stats.engine_errors == 0
