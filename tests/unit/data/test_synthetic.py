import numpy as np

from shoprec.data.cleaning import build_interactions
from shoprec.data.synthetic import generate_shop, render_image, write_shop


def test_seeded_and_carries_ground_truth():
    a, b = (
        generate_shop(n_users=80, n_items=60, seed=3),
        generate_shop(n_users=80, n_items=60, seed=3),
    )
    assert a.events.equals(b.events)
    assert not a.events.equals(generate_shop(n_users=80, n_items=60, seed=4).events)
    t = a.truth
    # titles carry the style, categories carry the ground-truth category
    for row, item in a.items.iterrows():
        assert t["styles"][t["item_style"][row]].split()[0] in item["title"].lower()
        assert item["category"] == t["categories"][t["item_category"][row]]
    # shoppers mostly buy in their favourite style
    bought = a.events[a.events.event_type == "purchase"]
    users = bought.user_id.str[1:].astype(int).to_numpy()
    items = bought.item_id.str[1:].astype(int).to_numpy()
    match = (t["user_fav_style"][users] == t["item_style"][items]).mean()
    assert match > 2 / len(t["styles"])  # twice chance


def test_funnel_bots_and_new_items():
    s = generate_shop(n_users=200, n_items=100, seed=1)
    counts = s.events.event_type.value_counts()
    assert counts["view"] > counts["click"] > counts["add_to_cart"] > counts["purchase"] > 0
    assert set(s.truth["bot_ids"]) <= set(s.events.user_id)
    data, rep = build_interactions(s.events, s.items, s.users)
    assert rep.removed["bot_regularity"] + rep.removed["bot_rate"] == 1200
    created = s.items.set_index("item_id").created_at
    new_items = s.items.item_id[s.truth["item_is_new"]]
    ev = s.events[s.events.item_id.isin(new_items) & ~s.events.user_id.isin(s.truth["bot_ids"])]
    assert (ev.timestamp.to_numpy() >= created[ev.item_id].to_numpy()).all()


def test_images_carry_style(tmp_path):
    red = render_image(0, seed=1).reshape(-1, 3).mean(0)
    navy = render_image(1, seed=1).reshape(-1, 3).mean(0)
    assert red[0] > red[2] and navy[2] > navy[0]
    stripes = render_image(0, seed=2)[:, :, 2].astype(float)
    assert np.abs(np.diff(stripes.mean(1))).max() > 50  # horizontal stripes
    s = generate_shop(n_users=10, n_items=24, seed=0)
    written = write_shop(s, tmp_path)
    assert (tmp_path / "images" / "P000000.png").exists() and written["items.csv"] == 24
