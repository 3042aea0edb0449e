import io

import numpy as np
import pytest
from PIL import Image

from shoprec.features.image import N_FEATURES, batch_image_features, image_features, load_image
from tests.unit.features.catalog import image


def _z(f: np.ndarray) -> np.ndarray:
    z = (f - f.mean(0)) / (f.std(0) + 1e-3)
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def test_image_features_separate_red_striped_from_blue_plain():
    red = [image_features(image(0, seed=s)) for s in range(5)]
    blue = [image_features(image(1, seed=10 + s)) for s in range(5)]
    z = _z(np.array(red + blue))
    sims = z @ z.T
    same = (sims[:5, :5].sum() - 5) / 20
    cross = sims[:5, 5:].mean()
    assert same > 0.5 and cross < 0.0
    # every image's nearest neighbour has its colour and pattern
    np.fill_diagonal(sims, -9)
    assert (np.argmax(sims, axis=1) // 5 == np.arange(10) // 5).all()


def test_hue_and_orientation_features_say_what_they_see():
    red = image_features(image(0))
    blue = image_features(image(1))
    assert np.argmax(red[:12]) in (0, 11)  # red hue wraps around 0
    assert 6 <= np.argmax(blue[:12]) <= 8
    # horizontal stripes: vertical gradient dominates (horizontal share small)
    assert red[12 + 4 + 4 + 6 + 2] < 0.2
    assert blue[12 + 4 + 4 + 6 + 1] < red[12 + 4 + 4 + 6 + 1]  # plain has less gradient spread
    assert red.shape == (N_FEATURES,) and red.dtype == np.float32


def test_load_image_accepts_arrays_pil_bytes_and_paths(tmp_path):
    arr = image(2)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    Image.fromarray(arr).save(tmp_path / "x.png")
    ref = image_features(load_image(arr))
    for value in (Image.fromarray(arr), buf.getvalue(), str(tmp_path / "x.png")):
        assert np.allclose(image_features(load_image(value)), ref, atol=1e-5)
    assert np.allclose(image_features(load_image("x.png", root=tmp_path)), ref, atol=1e-5)
    assert load_image(str(tmp_path / "missing.png")) is None
    assert load_image("") is None and load_image(None) is None
    with pytest.raises(TypeError):
        load_image(42)


def test_batch_marks_missing_images():
    feats, present = batch_image_features([image(0), None, "/no/such/file.png"])
    assert present.tolist() == [True, False, False]
    assert feats[1:].sum() == 0
