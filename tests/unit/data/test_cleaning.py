import numpy as np
import pandas as pd

from shoprec.config import CleaningConfig
from shoprec.data.cleaning import (
    build_interactions,
    clean_events,
    collapse_repeats,
    feedback_strength,
    k_core,
)


def frame(rows):
    return pd.DataFrame(
        rows, columns=["user_id", "item_id", "event_type", "timestamp", "session_id"]
    )


def test_bots_by_rate_and_regularity_are_removed_and_counted():
    rng = np.random.default_rng(0)
    human = [
        ("h", f"i{k}", "view", 1000 + float(t), "s1")
        for k, t in enumerate(np.cumsum(rng.exponential(60, 40)))
    ]
    fast = [("fast", "i1", "view", 1000 + k * 0.1 + rng.random() * 0.05, "s2") for k in range(400)]
    metronome = [("tick", "i2", "view", 1000 + k * 10.0, "s3") for k in range(50)]
    out, rep = clean_events(frame(human + fast + metronome), CleaningConfig())
    assert set(out["user_id"]) == {"h"}
    assert rep.removed["bot_rate"] == 400 and rep.removed["bot_regularity"] == 50
    assert sorted(rep.bot_users) == ["fast", "tick"]


def test_long_sessions_dropped():
    rows = [("u", "i", "view", float(k * 37 % 1000), "s") for k in range(30)] + [
        ("u", "j", "view", 5000.0, "t")
    ]
    out, rep = clean_events(
        frame(rows), CleaningConfig(max_events_per_session=10, min_regularity_events=1000)
    )
    assert list(out["session_id"]) == ["t"] and rep.removed["long_session"] == 30


def test_weights_decay_and_ratings():
    f = pd.DataFrame(
        {
            "event_type": ["view", "purchase", "rating", "remove_from_cart"],
            "timestamp": [0.0, 0.0, 0.0, 0.0],
            "value": [np.nan, 10, 2.5, np.nan],
        }
    )
    assert list(feedback_strength(f)) == [1.0, 8.0, 2.5, 0.0]
    g = pd.DataFrame({"event_type": ["view", "view"], "timestamp": [0.0, 86400.0 * 7]})
    assert list(feedback_strength(g, CleaningConfig(half_life_days=7))) == [0.5, 1.0]


def test_collapse_and_k_core():
    f = pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "a"],
            "item_id": ["x", "x", "y", "x"],
            "timestamp": [1.0, 2.0, 3.0, 4.0],
            "weight": [1.0, 2.0, 1.0, 8.0],
        }
    )
    c = collapse_repeats(f)
    assert list(c["item_id"]) == ["x", "y", "x"] and list(c["weight"]) == [3.0, 1.0, 8.0]
    kf = pd.DataFrame({"user_id": ["a", "a", "b", "c", "c"], "item_id": ["x", "y", "x", "x", "y"]})
    out = k_core(kf, 2, 2)
    assert set(out["user_id"]) == {"a", "c"} and set(out["item_id"]) == {"x", "y"}


def test_build_interactions_excludes_users_and_keeps_cold_items():
    ev = pd.DataFrame(
        {
            "user_id": ["a", "a", "b"],
            "item_id": ["x", "y", "x"],
            "event_type": ["view", "purchase", "click"],
            "timestamp": [1.0, 2.0, 3.0],
            "session_id": ["s", "s", "t"],
        }
    )
    items = pd.DataFrame({"item_id": ["x", "y", "z"], "title": ["X", "Y", "Z"]})
    data, rep = build_interactions(ev, items, None, exclude_users={"b"})
    assert data.users.to_list() == ["a"] and data.items.to_list() == ["x", "y", "z"]
    assert list(data.item_table["title"]) == ["X", "Y", "Z"]
    assert data.matrix().toarray().tolist() == [[1.0, 8.0, 0.0]]
