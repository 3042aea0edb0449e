import numpy as np
import pytest

from shoprec.features.projection import ContentProjection


def test_projection_recovers_a_linear_map_and_predicts_unseen_rows():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(10, 4))
    c = rng.normal(size=(300, 10))
    y = c @ w + 0.01 * rng.normal(size=(300, 4))
    p = ContentProjection(alpha=1e-4, match_norm=False).fit(c[:250], y[:250])
    assert p.r2_ > 0.99
    assert np.allclose(p.predict(c[250:]), y[250:], atol=0.1)


def test_projection_refuses_bad_input():
    with pytest.raises(ValueError):
        ContentProjection().fit(np.ones((1, 3)), np.ones((1, 2)))
    with pytest.raises(ValueError):
        ContentProjection().fit(np.ones((4, 3)), np.ones((3, 2)))
