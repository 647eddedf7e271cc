"""The app animates with a FOMM checkpoint: the official-format small checkpoint of the fixtures
(real weights file, real config, loaded with weights_only=True) drives the live window."""
import numpy as np
import pytest

pytest.importorskip("torch", reason="the FOMM engine needs torch (the neural extra)")

from app.threads import SourceSpec  # noqa: E402
from engine.compositing import Compositor, CompositorSettings  # noqa: E402
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
    qtbot.waitUntil(lambda: "fomm engine ready · torch cpu" in w.statusBar().currentMessage(), timeout=5000)
    probe = add_probe(w)
    wait_frames(qtbot, w, 6, probe, timeout=60000)
    out = probe.frames[-1].astype(int)
    assert out.shape == (720, 1280, 3)
    assert w.stats.engine_errors == 0
    # The face is drawn by the network; away from it the output is the portrait itself.
    portrait = w.worker.pipeline.portrait
    compositor = Compositor(CompositorSettings(output_size=(1280, 720)))
    still = compositor.compose(portrait.image).astype(int)
    x, y, _, _ = compositor.fit_rect(portrait.size)
    fx0, fy0, fx1, fy1 = (int(v) for v in portrait.landmarks.bbox())
    face = (slice(y + fy0, y + fy1), slice(x + fx0, x + fx1))
    corner = (slice(y, y + 40), slice(x, x + 40))
    assert np.abs(out[face] - still[face]).mean() > 10
    assert np.abs(out[corner] - still[corner]).mean() < 2
