import numpy as np

from engine.compositing import Compositor, CompositorSettings


def test_portrait_is_pillarboxed_not_stretched():
    image = np.full((200, 100, 3), 200, np.uint8)  # tall portrait
    out = Compositor(CompositorSettings(output_size=(1280, 720))).compose(image)
    assert out.shape == (720, 1280, 3)
    cols = np.where(out[360, :, 0] == 200)[0]
    assert len(cols) == 360  # 100x200 scaled to 360x720
    assert cols[0] == (1280 - 360) // 2
    assert np.all(out[:, :cols[0]] == 16)


def test_native_size_and_mirror():
    image = np.zeros((4, 6, 3), np.uint8)
    image[:, 0] = 255
    out = Compositor(CompositorSettings(mirror=True)).compose(image)
    assert out.shape == image.shape
    assert np.all(out[:, -1] == 255) and np.all(out[:, 0] == 0)
    assert Compositor().compose(image) is image  # nothing to do: no copy


def test_fit_rect_landscape_into_portrait_output():
    comp = Compositor(CompositorSettings(output_size=(720, 1280)))
    assert comp.fit_rect((1280, 720)) == (0, (1280 - 405) // 2, 720, 405)
