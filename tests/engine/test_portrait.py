import numpy as np
import pytest
from PIL import Image

from engine.errors import SourceImageError
from engine.portrait import load_portrait, read_image


def test_jpeg_exif_rotation_is_applied(tmp_path):
    """Phone photos store pixels sideways plus an EXIF orientation; the face must come upright."""
    pixels = np.zeros((100, 200, 3), np.uint8)
    pixels[:, :20] = 255  # a white band on the left of the stored (landscape) pixels
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = tmp_path / "phone.jpg"
    image.save(path, exif=exif)
    shown = read_image(path)
    assert shown.shape == (200, 100, 3)
    assert shown[:20].mean() > 240 and shown[-20:].mean() < 15  # the band is now on top


def test_rotated_phone_portrait_finds_its_face(media, tmp_path):
    upright = Image.open(media / "sources" / "s42.jpg")
    stored = upright.rotate(90, expand=True)  # as a sideways sensor would store it
    exif = stored.getexif()
    exif[0x0112] = 6
    path = tmp_path / "sideways.jpg"
    stored.save(path, exif=exif, quality=95)
    portrait = load_portrait(path)
    x0, y0, x1, y1 = portrait.landmarks.bbox()
    assert portrait.size == upright.size
    assert abs((x0 + x1) / 2 - 261) < 15 and abs((y0 + y1) / 2 - 308) < 15  # s42's face centre


def test_resized_portrait_keeps_landmarks_on_the_face(media):
    portrait = load_portrait(media / "sources" / "s42.jpg")
    half = portrait.resized((256, 256))
    np.testing.assert_allclose(half.landmarks.xy, portrait.landmarks.xy / 2, atol=1e-4)
    assert half.image.shape == (256, 256, 3)


def test_empty_file_is_a_clear_error(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(SourceImageError, match="cannot read source image empty.jpg"):
        read_image(path)
