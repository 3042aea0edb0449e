"""Popularity and trending: exact counts and the direction of time decay."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shoprec.data.interactions import InteractionData
from shoprec.models.popularity import Popularity, Trending


def frame_data() -> InteractionData:
    # item a: 3 interactions long ago (by 2 users); item b: 2 recent; item c: 1 recent
    day = 86400.0
    rows = [
        ("u1", "a", 0.0), ("u1", "a", 1.0), ("u2", "a", 2.0),
        ("u1", "b", 30 * day), ("u3", "b", 30 * day + 5), ("u2", "c", 30 * day + 9),
    ]  # fmt: skip
    return InteractionData.from_frame(
        pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    )


def test_popularity_counts() -> None:
    d = frame_data()
    pop = Popularity().fit(d).score([np.array([])])[0]
    a, b, c = (d.items.get(x) for x in "abc")
    assert pop[a] == pytest.approx(3 / 6) and pop[b] == pytest.approx(2 / 6)
    by_users = Popularity(by="users").fit(d).score([np.array([])])[0]
    assert by_users[a] == pytest.approx(by_users[b])  # 2 distinct users each
    with pytest.raises(ValueError):
        Popularity(by="nope").fit(d)


def test_trending_prefers_recent() -> None:
    d = frame_data()
    tr = Trending(half_life=7 * 86400.0).fit(d).score([np.array([])])[0]
    a, b, c = (d.items.get(x) for x in "abc")
    assert tr[b] > tr[c] > tr[a]  # a is 30 days (> 4 half-lives) old
    with pytest.raises(ValueError):
        Trending(half_life=0).fit(d)


def test_trending_on_positions_counts_back_from_each_users_latest() -> None:
    d = InteractionData.from_sequences({"u1": ["a", "a", "a", "b"], "u2": ["a", "c"]})
    s = Trending(positional_half_life=1.0).fit(d).score([np.array([])])[0]
    a, b, c = (d.items.get(x) for x in "abc")
    # a: 1/8 + 1/4 + 1/2 (u1) + 1/2 (u2) = 1.375, b: 1, c: 1
    total = 1.375 + 2
    assert s[a] == pytest.approx(1.375 / total) and s[b] == pytest.approx(1 / total)
