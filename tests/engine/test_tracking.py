import numpy as np

from engine.capture import VideoFileSource
from engine.face_regions import RIGHT_EYE_EAR, aspect_ratio
from engine.filters import OneEuroSettings
from engine.portrait import read_image
from engine.tracking import FaceLandmarks, FaceTracker, NoFace, landmark_array


def test_portrait_landmarks_are_in_pixels_and_inside_the_face(media):
    image = read_image(media / "sources" / "s42.jpg")
    with FaceTracker(still=True) as tracker:
        face = tracker.track(image)
    assert isinstance(face, FaceLandmarks)
    assert face.points.shape == (478, 3)
    x0, y0, x1, y1 = face.bbox()
    h, w = image.shape[:2]
    assert 0 < x0 < x1 < w and 0 < y0 < y1 < h
    assert 0.25 * w < x1 - x0 < 0.6 * w  # s42's face spans about 40% of its width
    assert 0.15 < aspect_ratio(face.points, RIGHT_EYE_EAR) < 0.45  # open eye


def test_no_face_is_a_result_not_an_exception(media):
    with FaceTracker(still=True) as tracker:
        result = tracker.track(read_image(media / "non-faces" / "cat.jpg"))
    assert isinstance(result, NoFace)
    with FaceTracker(still=False) as tracker:
        assert isinstance(tracker.track(np.zeros((240, 320, 3), np.uint8), 0.0), NoFace)


def test_huge_image_landmarks_scale_back_to_full_resolution(media):
    import cv2

    image = read_image(media / "sources" / "s42.jpg")
    with FaceTracker(still=True) as tracker:
        small = tracker.track(image)
        big = tracker.track(cv2.resize(image, (2560, 2560), interpolation=cv2.INTER_LINEAR))
    np.testing.assert_allclose(big.xy / 5.0, small.xy, atol=3.0)


def _landmark_speed(media, smoothing):
    src = VideoFileSource(media / "driving" / "d18.mp4", max_frames=90)
    with FaceTracker(smoothing=smoothing) as tracker:
        pts = np.array([tracker.track(f.image, f.index / src.fps).xy for f in src])
    return np.abs(np.diff(pts, n=2, axis=0)).mean()  # second difference = jitter


def test_one_euro_smoothing_reduces_driving_jitter(media):
    raw = _landmark_speed(media, None)
    smooth = _landmark_speed(media, OneEuroSettings())
    assert smooth < 0.8 * raw


def test_landmarks_read_from_bytes_equal_their_attributes(media):
    """landmark_array's fast path (the serialised floats) gives exactly what the attributes say, and
    a list of another layout (visibility set on a point, a zero left unset) falls back correctly."""
    import mediapipe as mp
    from mediapipe.framework.formats import landmark_pb2

    image = read_image(media / "sources" / "s42.jpg")
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True) as mesh:
        landmarks = mesh.process(image).multi_face_landmarks[0]
    by_attribute = np.array([(p.x, p.y, p.z) for p in landmarks.landmark], np.float64)
    assert by_attribute.shape == (478, 3)
    np.testing.assert_array_equal(landmark_array(landmarks), by_attribute)

    other = landmark_pb2.NormalizedLandmarkList()
    other.CopyFrom(landmarks)
    other.landmark[5].visibility = 0.9  # 5 more bytes on one record
    other.landmark[7].ClearField("z")  # 5 fewer on another: same total, other layout
    expected = by_attribute.copy()
    expected[7, 2] = 0.0
    np.testing.assert_array_equal(landmark_array(other), expected)
    assert landmark_array(landmark_pb2.NormalizedLandmarkList()).shape == (0, 3)
