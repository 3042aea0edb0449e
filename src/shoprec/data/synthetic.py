"""A seeded synthetic shop with known ground truth.

The catalog has categories, brands, prices and stock; titles and descriptions whose words carry
the category and the style; small product images whose colour and pattern carry the style.
Shoppers have latent tastes (favourite categories and styles) and a price sensitivity, and shop
in sessions along a view -> click -> cart -> purchase funnel. Purchases are often followed by the
item's complement (an "often bought after" rule), popularity has a long tail, one category
trends late, new items and new shoppers arrive late (cold start), and a few bots hammer the site.

Everything is generated with numpy in bulk, so `scale` reaches millions of events.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

START = 1767225600.0  # 2026-01-01T00:00:00Z
DAY = 86400.0

CATEGORIES: dict[str, dict[str, list[str]]] = {
    "Beauty": {
        "Skincare": ["serum", "cream", "cleanser"],
        "Makeup": ["lipstick", "mascara", "blush"],
        "Fragrance": ["perfume", "cologne", "mist"],
    },
    "Fashion": {
        "Shoes": ["sneakers", "boots", "sandals"],
        "Dresses": ["dress", "gown", "sundress"],
        "Bags": ["handbag", "backpack", "tote"],
    },
    "Home": {
        "Kitchen": ["kettle", "skillet", "mug"],
        "Decor": ["vase", "cushion", "lamp"],
        "Bedding": ["duvet", "pillow", "blanket"],
    },
    "Electronics": {
        "Audio": ["headphones", "speaker", "earbuds"],
        "Phones": ["phone", "charger", "case"],
        "Cameras": ["camera", "lens", "tripod"],
    },
    "Sports": {
        "Running": ["trainers", "shorts", "watch"],
        "Yoga": ["mat", "block", "leggings"],
        "Cycling": ["helmet", "gloves", "bottle"],
    },
    "Toys": {
        "Puzzles": ["puzzle", "cube", "maze"],
        "Dolls": ["doll", "dollhouse", "figure"],
        "Blocks": ["bricks", "tower", "train"],
    },
    "Garden": {
        "Tools": ["trowel", "shears", "rake"],
        "Plants": ["fern", "cactus", "orchid"],
        "Furniture": ["bench", "hammock", "parasol"],
    },
    "Books": {
        "Fiction": ["novel", "thriller", "saga"],
        "Cooking": ["cookbook", "recipes", "baking"],
        "Travel": ["guide", "atlas", "journal"],
    },
}

STYLES: list[tuple[str, tuple[int, int, int], str]] = [
    # (name, RGB colour, pattern) -- words in titles and pixels in images both carry it
    ("crimson striped", (200, 30, 40), "stripes"),
    ("navy plain", (20, 40, 120), "plain"),
    ("emerald dotted", (20, 150, 70), "dots"),
    ("golden checked", (220, 180, 40), "checks"),
    ("charcoal plain", (60, 60, 60), "plain"),
    ("coral striped", (250, 120, 90), "stripes"),
]
BRAND_SYLLABLES = ["lu", "mo", "ka", "ri", "ze", "to", "na", "vi", "so", "pe", "da", "ro"]
FILLER = ["quality", "design", "everyday", "premium", "classic", "new", "soft", "durable", "light"]


@dataclass
class SyntheticShop:
    """The generated shop: tables ready for ingestion, plus the ground truth behind them."""

    events: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    truth: dict = field(default_factory=dict)
    seed: int = 0

    def image(self, item_id: str, size: int = 32) -> np.ndarray:
        """The product image of `item_id`: (size, size, 3) uint8; colour and pattern = style."""
        row = self.truth["item_index"][item_id]
        return render_image(
            int(self.truth["item_style"][row]), size, seed=self.seed * 1_000_003 + row
        )


def render_image(style: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """A small product image: background noise, a style-coloured pattern."""
    rng = np.random.default_rng(seed)
    _, rgb, pattern = STYLES[style]
    img = np.full((size, size, 3), 235, dtype=np.float32) + rng.normal(0, 6, (size, size, 3))
    yy, xx = np.mgrid[0:size, 0:size]
    if pattern == "stripes":
        mask = (yy // 4) % 2 == 0
    elif pattern == "dots":
        mask = ((yy % 8 - 4) ** 2 + (xx % 8 - 4) ** 2) <= 5
    elif pattern == "checks":
        mask = ((yy // 6) + (xx // 6)) % 2 == 0
    else:
        mask = np.ones((size, size), dtype=bool)
    img[mask] = np.array(rgb, dtype=np.float32) + rng.normal(0, 8, (int(mask.sum()), 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _categorical_rows(rng: np.random.Generator, probs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """One draw per entry of `rows` from the categorical distribution probs[row]."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(rows)) * cum[rows, -1]
    return (cum[rows] < u[:, None]).sum(axis=1)


def generate_shop(
    n_users: int = 500,
    n_items: int = 300,
    seed: int = 0,
    days: float = 90.0,
    sessions_per_user: float = 6.0,
    new_item_fraction: float = 0.1,
    new_user_fraction: float = 0.1,
    n_bots: int = 2,
) -> SyntheticShop:
    """Generate a shop. About 10 events per session, so events ~ 10 x users x sessions_per_user."""
    if n_users < 1 or n_items < 24:
        raise ValueError("generate_shop: need n_users >= 1 and n_items >= 24")
    rng = np.random.default_rng(seed)
    subcats = [(top, sub, nouns) for top, subs in CATEGORIES.items() for sub, nouns in subs.items()]
    n_cat, n_sty = len(subcats), len(STYLES)

    # ------------------------------------------------------------------ catalog
    item_cat = np.arange(n_items) % n_cat
    rng.shuffle(item_cat)
    item_style = rng.integers(0, n_sty, n_items)
    brands = ["".join(rng.choice(BRAND_SYLLABLES, 2)).capitalize() for _ in range(n_cat * 4)]
    item_brand = item_cat * 4 + rng.integers(0, 4, n_items)
    brand_tier = (np.arange(n_cat * 4) % 4) * 0.35  # some brands are pricier
    cat_base = rng.uniform(2.5, 5.0, n_cat)
    price = np.round(
        np.exp(cat_base[item_cat] + brand_tier[item_brand] + rng.normal(0, 0.35, n_items)), 2
    )
    popularity = 1.0 / (rng.permutation(n_items) + 1.0) ** 0.9  # long tail (Zipf-like)
    is_new = rng.random(n_items) < new_item_fraction
    created = np.where(
        is_new,
        START + rng.uniform(0.8, 0.95, n_items) * days * DAY,
        START - rng.uniform(1, 365, n_items) * DAY,
    )
    stock = rng.integers(0, 200, n_items)
    stock[rng.random(n_items) < 0.03] = 0
    complement = np.empty(n_items, dtype=np.int64)  # the item often bought after this one
    for c in range(n_cat):
        partner_cat = (c + 1) % n_cat if c % 3 != 2 else c - 2
        pool = np.flatnonzero((item_cat == partner_cat) & ~is_new)
        members = np.flatnonzero(item_cat == c)
        complement[members] = rng.choice(pool, len(members)) if len(pool) else members
    titles, descs, cats = [], [], []
    for i in range(n_items):
        top, sub, nouns = subcats[item_cat[i]]
        sname = STYLES[item_style[i]][0]
        noun = nouns[i % len(nouns)]
        titles.append(f"{brands[item_brand[i]]} {sname.title()} {noun.title()} {i % 97 + 1:02d}")
        words = [sname, noun, sub.lower(), top.lower(), *rng.choice(FILLER, 3)]
        descs.append(
            f"A {words[4]} {sname} {noun} for {sub.lower()} lovers: {words[5]} {words[6]} {top.lower()} {noun}."
        )
        cats.append(f"{top} > {sub}")
    item_ids = [f"P{i:06d}" for i in range(n_items)]
    items = pd.DataFrame(
        {
            "item_id": item_ids,
            "title": titles,
            "description": descs,
            "category": cats,
            "brand": [brands[b] for b in item_brand],
            "price": price,
            "currency": "EUR",
            "image": [f"images/{i}.png" for i in item_ids],
            "stock": stock,
            "created_at": created,
            "active": True,
        }
    )

    # -------------------------------------------------------------------- users
    taste_cat = rng.dirichlet(np.full(n_cat, 0.15), n_users)  # a few favourite categories
    fav_style = rng.integers(0, n_sty, n_users)
    price_sens = rng.random(n_users) < 0.5
    late = rng.random(n_users) < new_user_fraction
    arrival = (
        np.where(late, rng.uniform(0.85, 0.97, n_users), rng.uniform(0, 0.3, n_users)) * days * DAY
        + START
    )
    user_ids = [f"U{u:06d}" for u in range(n_users)]
    users = pd.DataFrame(
        {
            "user_id": user_ids,
            "age_band": rng.choice(["18-24", "25-34", "35-44", "45-54", "55+"], n_users),
            "country": rng.choice(["DE", "FR", "NL", "ES", "IT"], n_users),
        }
    )

    # ----------------------------------------------------------------- sessions
    n_sess = rng.poisson(sessions_per_user, n_users).clip(1)
    n_sess[late] = rng.integers(1, 3, int(late.sum()))
    s_user = np.repeat(np.arange(n_users), n_sess)
    span = START + days * DAY - arrival[s_user]
    s_time = arrival[s_user] + rng.random(len(s_user)) * span
    trend_cat = int(rng.integers(n_cat))
    trending = (s_time > START + 0.75 * days * DAY) & (rng.random(len(s_user)) < 0.3)
    s_cat = np.where(trending, trend_cat, _categorical_rows(rng, taste_cat, s_user))
    s_len = rng.geometric(0.22, len(s_user)).clip(1, 20)  # views per session

    # views: a style (favourite with p=.75) and an item from the (category, style) bucket
    v_sess = np.repeat(np.arange(len(s_user)), s_len)
    v_user = s_user[v_sess]
    v_style = np.where(
        rng.random(len(v_sess)) < 0.75, fav_style[v_user], rng.integers(0, n_sty, len(v_sess))
    )
    v_item = _pick_items(
        rng,
        item_cat,
        item_style,
        popularity,
        price,
        s_cat[v_sess],
        v_style,
        price_sens[v_user],
        created,
        s_time[v_sess],
    )
    gaps = rng.exponential(40.0, len(v_sess))
    first = np.concatenate([[0], np.cumsum(s_len)[:-1]])
    cum = np.cumsum(gaps)
    v_time = s_time[v_sess] + cum - cum[first][v_sess]

    affinity = (fav_style[v_user] == item_style[v_item]).astype(float)
    p_click = 0.35 + 0.3 * affinity
    clicked = rng.random(len(v_sess)) < p_click
    carted = clicked & (rng.random(len(v_sess)) < 0.3 + 0.2 * affinity)
    bought = carted & (rng.random(len(v_sess)) < 0.55)
    parts = [
        (v_user, v_item, "view", v_time, v_sess),
        (v_user[clicked], v_item[clicked], "click", v_time[clicked] + 5, v_sess[clicked]),
        (v_user[carted], v_item[carted], "add_to_cart", v_time[carted] + 20, v_sess[carted]),
        (v_user[bought], v_item[bought], "purchase", v_time[bought] + 600, v_sess[bought]),
    ]
    # "often bought after": a purchase is followed by a look at, and often a buy of, the complement
    follow = bought & (rng.random(len(v_sess)) < 0.7)
    c_item, c_user, c_time, c_sess = (
        complement[v_item[follow]],
        v_user[follow],
        v_time[follow] + 900,
        v_sess[follow],
    )
    parts += [
        (c_user, c_item, "view", c_time, c_sess),
        (c_user, c_item, "click", c_time + 5, c_sess),
    ]
    c_buy = rng.random(len(c_item)) < 0.5
    parts.append((c_user[c_buy], c_item[c_buy], "purchase", c_time[c_buy] + 300, c_sess[c_buy]))
    rated = bought & (rng.random(len(v_sess)) < 0.3)
    parts.append((v_user[rated], v_item[rated], "rating", v_time[rated] + 3 * DAY, v_sess[rated]))

    ev_user = np.concatenate([p[0] for p in parts])
    ev_item = np.concatenate([p[1] for p in parts])
    ev_type = np.concatenate([np.full(len(p[0]), p[2]) for p in parts])
    ev_time = np.concatenate([p[3] for p in parts])
    ev_sess = np.concatenate([p[4] for p in parts])
    value = np.where(
        ev_type == "rating",
        np.clip(
            np.round(
                3
                + 2 * affinity_of(fav_style, item_style, ev_user, ev_item)
                + rng.normal(0, 0.5, len(ev_user))
            ),
            1,
            5,
        ),
        np.nan,
    )
    value = np.where(ev_type == "purchase", price[ev_item], value)
    events = pd.DataFrame(
        {
            "user_id": np.array(user_ids, dtype=object)[ev_user],
            "item_id": np.array(item_ids, dtype=object)[ev_item],
            "event_type": ev_type,
            "timestamp": np.round(ev_time, 3),
            "value": value,
            "session_id": np.char.add("S", ev_sess.astype(str)),
        }
    )
    events = pd.concat([events, _bots(rng, n_bots, item_ids, days)], ignore_index=True)
    events = events.sort_values(["timestamp", "user_id"], kind="stable").reset_index(drop=True)
    events.insert(0, "event_id", [f"E{i:09d}" for i in range(len(events))])

    truth = {
        "item_index": {iid: i for i, iid in enumerate(item_ids)},
        "item_category": item_cat,
        "item_style": item_style,
        "complement": complement,
        "item_is_new": is_new,
        "user_taste": taste_cat,
        "user_fav_style": fav_style,
        "user_is_new": late,
        "user_price_sensitive": price_sens,
        "trend_category": trend_cat,
        "categories": [f"{t} > {s}" for t, s, _ in subcats],
        "styles": [s[0] for s in STYLES],
        "bot_ids": [f"BOT{b}" for b in range(n_bots)],
    }
    return SyntheticShop(events=events, items=items, users=users, truth=truth, seed=seed)


def affinity_of(
    fav_style: np.ndarray, item_style: np.ndarray, users: np.ndarray, items: np.ndarray
) -> np.ndarray:
    """Ground-truth style match (1.0 = the user's favourite style)."""
    return (fav_style[users] == item_style[items]).astype(float)


def _pick_items(
    rng, item_cat, item_style, popularity, price, cats, styles, sensitive, created, when
):
    """Draw one item per view from its (category, style) bucket by popularity; price-sensitive
    shoppers discount expensive items; items not yet created fall back to the bucket's head."""
    n_sty = len(STYLES)
    bucket_of_item = item_cat * n_sty + item_style
    bucket = cats * n_sty + styles
    out = np.empty(len(bucket), dtype=np.int64)
    cat_items = {c: np.flatnonzero(item_cat == c) for c in np.unique(item_cat)}
    order = np.argsort(bucket, kind="stable")
    bounds = np.flatnonzero(np.diff(bucket[order])) + 1
    for group in np.split(order, bounds):
        b = int(bucket[group[0]])
        members = np.flatnonzero(bucket_of_item == b)
        if len(members) == 0:  # no item of that style in the category: any style
            members = cat_items[b // n_sty]
        for sens in (False, True):
            g = group[sensitive[group] == sens]
            if len(g) == 0:
                continue
            w = popularity[members] * (np.exp(-0.8 * np.log(price[members])) if sens else 1.0)
            choice = members[rng.choice(len(members), len(g), p=w / w.sum())]
            not_yet = created[choice] > when[g]
            if not_yet.any():
                # fall back to the most popular established item of the bucket, else of the
                # category, else of the shop
                for pool in (members, cat_items[b // n_sty], np.arange(len(created))):
                    old = pool[created[pool] <= START]
                    if len(old):
                        break
                choice[not_yet] = old[np.argmax(popularity[old])]
            out[g] = choice
    return out


def _bots(rng: np.random.Generator, n_bots: int, item_ids: list[str], days: float) -> pd.DataFrame:
    """Scrapers: hundreds of views at a metronome-regular one-second beat."""
    frames = []
    for b in range(n_bots):
        n = 600
        t0 = START + rng.uniform(0.1, 0.9) * days * DAY
        frames.append(
            pd.DataFrame(
                {
                    "user_id": f"BOT{b}",
                    "item_id": rng.choice(item_ids, n),
                    "event_type": "view",
                    "timestamp": np.round(t0 + np.arange(n) * 1.0, 3),
                    "value": np.nan,
                    "session_id": f"SBOT{b}",
                }
            )
        )
    return pd.concat(frames) if frames else pd.DataFrame()


def write_shop(shop: SyntheticShop, out_dir, images: bool = True) -> dict[str, int]:
    """Write events.csv, items.csv, users.csv (and images/*.png) to `out_dir`; row counts."""
    from pathlib import Path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shop.events.to_csv(out / "events.csv", index=False)
    shop.items.to_csv(out / "items.csv", index=False)
    shop.users.to_csv(out / "users.csv", index=False)
    written = {
        "events.csv": len(shop.events),
        "items.csv": len(shop.items),
        "users.csv": len(shop.users),
    }
    if images:
        from PIL import Image

        (out / "images").mkdir(exist_ok=True)
        for iid in shop.items["item_id"]:
            Image.fromarray(shop.image(iid)).save(out / "images" / f"{iid}.png")
        written["images/*.png"] = len(shop.items)
    return written
