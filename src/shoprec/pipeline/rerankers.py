"""The middle re-rank stages: diversity (MMR), exploration slots, promotion slots.

- Diversity: maximal marginal relevance (Carbonell & Goldstein, SIGIR 1998): pick the item
  maximising relevance - w * (max similarity to the items already picked); relevance is the
  ranker score scaled to [0, 1]. The knob d in [0, 1] sets w = 0.25 * d / (1 - d), so the
  trade-off moves across the whole range instead of saturating at d = 0.5 as the textbook
  (1 - d) * rel - d * sim does with [0, 1] relevance: d = 0 keeps the ranker's order
  exactly, d = 0.5 trades a quarter of the relevance range for a same-category neighbour,
  d = 1 never repeats a category while another remains (similarity first, relevance only
  breaks ties). Similarity is the cosine of item vectors when given, else categories (1
  same category, 0.5 same top-level category). An optional per-category cap applies at any d.
- Exploration: Thompson sampling (a Beta(1 + clicks, 1 + impressions - clicks) posterior per
  new item) chooses which new items get the exploration slots.
- Promotions: campaign items pinned at a slot or boosted up a few places, at most
  `max_promoted` per list, and only when the rules allow them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from shoprec.pipeline.candidates import Candidates
from shoprec.pipeline.request import Query
from shoprec.pipeline.rules import Reranker, Rules, member, sorted_unique


class DiversityReranker(Reranker):
    """MMR over the top `pool_factor * k` candidates, with an optional per-category cap."""

    name = "diversity"

    def __init__(
        self,
        rules: Rules,
        max_per_category: int = 0,
        pool_factor: int = 5,
        vectors: np.ndarray | None = None,
    ):
        self.rules = rules
        self.max_per_category = max_per_category
        self.pool_factor = pool_factor
        self.vectors = vectors

    def rerank(self, query: Query, candidates: Candidates) -> Candidates:
        d = query.diversity
        k = query.k
        if (d <= 0 and not self.max_per_category) or len(candidates) <= 1 or k <= 0:
            return candidates
        pool_n = min(len(candidates), max(k * self.pool_factor, k + 10))
        picked = self._select(candidates.head(pool_n), d, min(k, pool_n))
        rest = np.setdiff1d(np.arange(len(candidates)), picked, assume_unique=True)
        out = candidates.take(np.concatenate([picked, np.sort(rest)]))
        for new_pos, old_pos in enumerate(picked.tolist()):
            if new_pos != old_pos:
                moved = "down" if new_pos > old_pos else "up"
                out.note(
                    int(out.items[new_pos]), f"diversity: moved {moved} {abs(new_pos - old_pos)}"
                )
        return out

    def _select(self, pool: Candidates, d: float, k: int) -> np.ndarray:
        """Positions in `pool` of the k items MMR picks, in pick order. Shape (k,)."""
        cat = self.rules.catalog
        s = pool.scores
        span = s.max() - s.min()
        rel = (s - s.min()) / span if span > 0 else np.ones(len(s))
        cats = cat.category[pool.items]
        tops = cat.top_of(pool.items)
        vec = None
        if self.vectors is not None and pool.items.max() < len(self.vectors):
            vec = self.vectors[pool.items]
            vec = vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)
        max_sim = np.zeros(len(pool))
        free = np.ones(len(pool), bool)
        _, cat_of = np.unique(cats, return_inverse=True)
        counts = np.zeros(int(cat_of.max()) + 1 if len(cat_of) else 0, np.int64)
        cap = self.max_per_category
        picked: list[int] = []
        rel_w, sim_w = (1e-6, 1.0) if d >= 1.0 else (1.0, 0.25 * d / (1.0 - d))
        for _ in range(k):
            value = rel_w * rel - sim_w * max_sim
            if cap:
                full = (counts[cat_of] >= cap) & free
                if (free & ~full).any():
                    value = np.where(full, -np.inf, value)
            value = np.where(free, value, -np.inf)
            j = int(np.argmax(value))  # ties: the better-ranked item (earlier position)
            if not free[j]:
                break
            picked.append(j)
            free[j] = False
            counts[cat_of[j]] += 1
            if vec is not None:
                sim = vec @ vec[j]
            else:
                sim = np.where(cats == cats[j], 1.0, np.where(tops == tops[j], 0.5, 0.0))
            np.maximum(max_sim, sim, out=max_sim)
        return np.array(picked, np.int64)


class ExplorationReranker(Reranker):
    """Gives `slots` positions of the list to new items chosen by Thompson sampling.

    Feedback arrives through `record(item, clicked)`; showing an item counts an impression
    when `count_impressions` is true. Lists shorter than `min_k` are left alone.
    """

    name = "exploration"
    top_k_only = True

    def __init__(
        self,
        rules: Rules,
        slots: int = 1,
        min_k: int = 4,
        seed: int = 0,
        count_impressions: bool = True,
        max_arms: int = 256,
    ):
        self.rules = rules
        self.max_arms = max_arms
        self.slots = slots
        self.min_k = min_k
        self.count_impressions = count_impressions
        self.rng = np.random.default_rng(seed)
        n = len(rules.catalog)
        self.clicks = np.zeros(n)
        self.impressions = np.zeros(n)
        self._clicked: set[int] = set()  # items with a click: always compete
        self._clicked_arr = np.zeros(0, np.int64)
        self._lock = threading.Lock()

    def _ensure(self, n: int) -> None:
        if len(self.clicks) < n:
            with self._lock:
                extra = n - len(self.clicks)
                self.clicks = np.concatenate([self.clicks, np.zeros(extra)])
                self.impressions = np.concatenate([self.impressions, np.zeros(extra)])

    def record(self, item: int, clicked: bool = True, shown: bool = False) -> None:
        """Count a click (and, when `shown`, an impression) for `item`."""
        self._ensure(item + 1)
        self.clicks[item] += float(clicked)
        self.impressions[item] += float(shown)
        if clicked and int(item) not in self._clicked:
            self._clicked.add(int(item))
            self._clicked_arr = np.fromiter(self._clicked, np.int64, len(self._clicked))

    def _arms(self) -> np.ndarray:
        """New items competing for the slots: every one that was clicked, plus a random
        sample of `max_arms` of the rest (a catalog can hold 100k new items; sampling keeps
        a request to a few hundred Beta draws). Items shown but never clicked compete through
        the sample: their posterior is below an untried item's, and letting every shown item
        in would grow each request's draws with traffic. Shape (<= max_arms + n_clicked,)."""
        new = self.rules.catalog.new_items
        if len(new) <= self.max_arms:
            return new
        # uniform positions, from one uniform draw (cheaper than `Generator.integers`)
        pos = (self.rng.random(self.max_arms) * len(new)).astype(np.int64)
        sample = new[np.minimum(pos, len(new) - 1)]
        clicked = self._clicked_arr
        if len(clicked):
            is_new = self.rules.catalog.is_new
            clicked = clicked[clicked < len(is_new)]
            clicked = clicked[is_new[clicked]]
            sample = np.concatenate([sample, clicked])
        return sorted_unique(sample)

    def draw(self, arms: np.ndarray) -> np.ndarray:
        """One Thompson draw per arm from its Beta(1 + clicks, 1 + misses) posterior.

        An arm without clicks has alpha = 1, and Beta(1, b) is drawn exactly by its inverse
        CDF, 1 - U ** (1 / b), from one uniform: far cheaper than `Generator.beta`, which
        only the clicked arms need. Shape (len(arms),)."""
        clicks = self.clicks[arms]
        b = 1.0 + np.maximum(self.impressions[arms] - clicks, 0.0)
        u = 1.0 - self.rng.random(len(arms))  # in (0, 1]
        theta = -np.expm1(np.log(u) / b)
        hit = np.flatnonzero(clicks > 0)
        if len(hit):
            theta[hit] = self.rng.beta(1.0 + clicks[hit], b[hit])
        return theta

    def rerank(self, query: Query, candidates: Candidates) -> Candidates:
        k = query.k
        if self.slots <= 0 or k < self.min_k or query.cold:
            return candidates
        new = self._arms()
        if len(new) == 0:
            return candidates
        top = candidates.items[:k]
        new = new[self.rules.allowed(query, new) & ~member(new, np.sort(top))]
        if len(new) == 0:
            return candidates
        self._ensure(int(new.max()) + 1)
        theta = self.draw(new)
        n_slots = min(self.slots, len(new))
        best = np.argpartition(-theta, n_slots - 1)[:n_slots]
        chosen = new[best[np.argsort(-theta[best])]]
        out = candidates
        for s, item in enumerate(chosen.tolist()):
            pos = min(k, len(out)) - 1 - s if min(k, len(out)) > 0 else 0
            pos = max(pos, 0)
            out = out.insert(pos, item, self.name)
            out.note(item, f"exploration: new item tried at position {pos + 1}")
            if self.count_impressions:
                self.impressions[item] += 1.0
        return out


@dataclass(frozen=True)
class Campaign:
    """A promoted item: `mode` "pin" puts it at `slot` (0-based); "boost" moves it up
    `boost` places (or brings it in `boost` places above the end of the list)."""

    item_id: str
    mode: str = "pin"
    slot: int = 0
    boost: int = 3
    name: str = ""

    def __post_init__(self) -> None:
        if self.mode not in ("pin", "boost"):
            raise ValueError(f"mode: must be 'pin' or 'boost', got {self.mode!r}")
        if self.slot < 0 or self.boost < 0:
            raise ValueError("slot and boost must be >= 0")


class PromotionReranker(Reranker):
    """Applies campaigns in order (pins first), at most `max_promoted` per list."""

    name = "promotion"
    top_k_only = True

    def __init__(self, rules: Rules, campaigns: tuple[Campaign, ...] = (), max_promoted: int = 2):
        self.rules = rules
        self.campaigns = tuple(campaigns)
        self.max_promoted = max_promoted

    def rerank(self, query: Query, candidates: Candidates) -> Candidates:
        if not self.campaigns or self.max_promoted <= 0 or query.k <= 0:
            return candidates
        items = self.rules.catalog.items
        ordered = sorted(self.campaigns, key=lambda c: c.mode != "pin")
        idx = np.array([items.get(c.item_id) for c in ordered], np.int64)
        ok = self.rules.allowed(query, idx)
        out = candidates
        done = 0
        for camp, item, allowed in zip(ordered, idx.tolist(), ok.tolist(), strict=True):
            if not allowed or done >= self.max_promoted:
                continue
            label = f" ({camp.name})" if camp.name else ""
            present = np.flatnonzero(out.items[: query.k] == item)
            if camp.mode == "pin":
                pos = min(camp.slot, query.k - 1)
                out = out.insert(pos, item, self.name)
                out.note(item, f"promotion: pinned at position {pos + 1}{label}")
            else:
                if len(present):
                    pos = max(0, int(present[0]) - camp.boost)
                else:
                    pos = max(0, min(query.k, len(out)) - camp.boost)
                out = out.insert(pos, item, self.name)
                out.note(item, f"promotion: boosted to position {pos + 1}{label}")
            done += 1
        return out
