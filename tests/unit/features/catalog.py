"""A tiny catalog with known answers for the content tests.

- 4 categories with distinct vocabularies; 8 warm items and 2 cold items (no interactions) in
  each. Item "k{c}_{j}" (j >= 8 are the cold ones).
- Each category has one colour and pattern in its images: red stripes, blue plain, green
  dots, yellow checks, and the colour word appears in the title.
- User "u{n}" likes category n % 4 and interacts with 5 (n_events) of its warm items.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from shoprec.data.interactions import InteractionData

NOUNS = [
    ["running shoes", "trail sneakers", "leather boots", "canvas sandals"],
    ["electric kettle", "cast iron skillet", "ceramic mug", "espresso maker"],
    ["matte lipstick", "volume mascara", "rose blush", "face serum"],
    ["camping tent", "sleeping bag", "hiking backpack", "trekking poles"],
]
CATEGORIES = ["Fashion > Shoes", "Home > Kitchen", "Beauty > Makeup", "Outdoor > Camping"]
COLOURS = [
    ("red", (200, 30, 40), "stripes"),
    ("blue", (20, 40, 160), "plain"),
    ("green", (20, 150, 70), "dots"),
    ("yellow", (230, 190, 40), "checks"),
]
N_CATS, WARM, COLD = 4, 8, 2


def item_id(c: int, j: int) -> str:
    return f"k{c}_{j}"


def image(c: int, seed: int = 0, size: int = 32) -> np.ndarray:
    """An image of category c: its colour in its pattern on a light background."""
    rng = np.random.default_rng(seed)
    _, rgb, pattern = COLOURS[c]
    img = np.full((size, size, 3), 235.0) + rng.normal(0, 5, (size, size, 3))
    yy, xx = np.mgrid[0:size, 0:size]
    mask = {
        "stripes": (yy // 4) % 2 == 0,
        "plain": np.ones((size, size), bool),
        "dots": ((yy % 8 - 4) ** 2 + (xx % 8 - 4) ** 2) <= 5,
        "checks": ((yy // 6) + (xx // 6)) % 2 == 0,
    }[pattern]
    img[mask] = np.array(rgb, float) + rng.normal(0, 6, (int(mask.sum()), 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def items_frame() -> pd.DataFrame:
    rows = []
    for c in range(N_CATS):
        for j in range(WARM + COLD):
            noun = NOUNS[c][j % 4]
            rows.append(
                {
                    "item_id": item_id(c, j),
                    "title": f"{COLOURS[c][0]} {noun} model {j}",
                    "description": f"A {COLOURS[c][0]} {noun} for {CATEGORIES[c].split(' > ')[1].lower()}",
                    "category": CATEGORIES[c],
                    "brand": f"Brand{c}{j % 2}",
                    "price": 10.0 * (c + 1) + j,
                }
            )
    return pd.DataFrame(rows)


def images() -> dict[str, np.ndarray]:
    return {
        item_id(c, j): image(c, seed=100 * c + j) for c in range(N_CATS) for j in range(WARM + COLD)
    }


def make_data(n_users: int = 40, seed: int = 0, n_events: int = 5) -> InteractionData:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        c = u % N_CATS
        for t, j in enumerate(rng.choice(WARM, n_events, replace=False)):
            rows.append((f"u{u}", item_id(c, int(j)), float(t + 10 * u)))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return InteractionData.from_frame(frame, items_frame())


def cold_index(data: InteractionData, c: int) -> np.ndarray:
    return data.items.to_index([item_id(c, j) for j in range(WARM, WARM + COLD)])
