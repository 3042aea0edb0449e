"""PrivateSeq: a SASRec-style encoder built for per-user differential privacy.

The architecture is SASRec's (Kang & McAuley, ICDM 2018: item + position embeddings,
pre-LN self-attention blocks) with two changes that make per-sample gradients cheap, so that
DP-SGD (Abadi et al., CCS 2016) can clip each *user's* gradient:

- one attention block, evaluated only where it is read (the last position);
- the output layer is its own `nn.Linear` (SASRec ties it to the item embedding; a weight used
  by two layers has no per-sample gradient hook in Opacus);
- every training example is one user: the user's history up to a random cut predicts the
  item at the cut, from the representation at the last position (SASRec trains every position
  of a sequence at once). Batches are users, so a batch row is one DP record; with
  `poisson=True` each user joins each step independently with probability
  ``batch_size / n_users`` (the sampling the privacy accountant assumes).

Without privacy it trains in the shared loop like every torch model; `shoprec.privacy.dp`
trains the same model with DP-SGD.

`item_repr="attributes"` is the DP-friendly variant: DP-SGD adds noise to every learned
parameter, and per-item tables (12k items x 64 on Beauty, twice) drown in it. Here items are
described by the public catalog (attribute ids, IDF-weighted), scores live in attribute space
plus a learned item bias, a fixed attribute-overlap prior of the recent history (AttributeKNN's
score, with a learned per-attribute gate) carries what the catalog alone says, and only a
low-rank per-item correction (`id_dim`) is per item. `popularity_init` starts the item bias at
(log) popularity, released with the Gaussian mechanism under DP (`shoprec.privacy.dp`).
`transition_init` adds a second fixed prior from released *sufficient statistics*: attribute ->
next-attribute transition counts (637 x 637 on Beauty), each user's contribution L2-normalised,
released once with the Gaussian mechanism, smoothed and normalised by the (released) attribute
popularity; the score gains ``gate_T * a_j . (T^T p)`` for the recency-decayed profile ``p``.
`item_transition_init` adds a third: attribute -> next-*item* values on the catalog's public
(item, attribute) support, released the same way; the score of item j gains
``(gate_R * p) . R_j``, which says which items of a brand its shoppers go on to, something
neither the attribute priors nor DP-SGD (whose noise drowns per-item parameters) can say.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from shoprec.data.interactions import InteractionData
from shoprec.models.layers import pad_histories
from shoprec.models.private_seq_module import PrivateSeqModule
from shoprec.models.torch_base import TorchRecommender, tag_csr


def _gaussian(values: np.ndarray, std: float, seed: int) -> np.ndarray:
    """`values` plus N(0, std^2) noise from a generator seeded with `seed` (unchanged at 0)."""
    if std <= 0:
        return values
    return values + np.random.default_rng(seed).normal(0.0, std, values.shape)


class PrivateSeq(TorchRecommender):
    """A SASRec-style model whose training example is one user (see module docstring).

    Parameters
    ----------
    dim, heads, dropout : size of the (one) attention block and regularisation.
    max_len : int
        Most recent items used as input.
    item_repr : {"id", "attributes"}
        "id": learned per-item input and output tables (SASRec's). "attributes": item vectors
        from the public catalog's attribute ids (the item table's tags/category/brand, e.g.
        S3-Rec's item2attributes), a learned item bias and an optional low-rank per-item
        correction, so DP noise hits far fewer parameters (see `PrivateSeqModule`).
    id_dim : int
        "attributes" only: rank of the per-item correction (0: none).
    prior_last, prior_decay : int, float
        "attributes" only: the public attribute-overlap prior reads the last `prior_last`
        items, weighted `prior_decay` ** age (0 items: no prior).
    popularity_init, popularity_share : float
        "attributes" only: start the item bias at ``popularity_init * log(1 + c_j)`` where
        ``c_j`` counts item j's training users, each user weighing 1 / sqrt(their distinct
        items) (L2 sensitivity 1 per user); 0 leaves the bias at zero. Under DP
        (`shoprec.privacy.dp.fit_private`) the counts are released with the Gaussian
        mechanism, spending `popularity_share` of epsilon (composed with DP-SGD in the
        same RDP accountant). Federated training ignores it.
    transition_init, transition_share, transition_smooth : float
        "attributes" only: > 0 adds the released attribute-transition
        prior (`transition_prior`) with a learned per-attribute gate started at
        `transition_init`; under DP the transition counts are released with the Gaussian
        mechanism spending `transition_share` of epsilon (same accountant). Rows and columns
        are normalised by the released attribute popularity plus `transition_smooth` (damps
        rare attributes, whose counts are mostly noise), so popularity is released too (its
        bias stays 0 when `popularity_init` is 0).
    item_transition_init, item_transition_share, item_transition_smooth : float
        "attributes" only: > 0 adds the released attribute -> next-item prior
        (`item_transition_prior`): values on the catalog's public (item, attribute) support
        saying how often shoppers who just saw attribute a went on to item j, normalised by
        the released attribute popularity plus `item_transition_smooth`, with a learned
        per-attribute gate started at `item_transition_init`; under DP released with the
        Gaussian mechanism spending `item_transition_share` of epsilon (same accountant).
    learn_item_bias : bool
        "attributes" only: False keeps the item bias at its (released) popularity start, so
        DP-SGD adds no noise to it; with ``id_dim=0`` no learned parameter is then per item.
    cuts_per_user : int
        Training examples per user per step: that many distinct random cuts of the user's
        sequence (fewer when the sequence is shorter), their losses averaged into the user's
        one loss. Under DP the *average* is clipped, so one user still moves a step by at
        most the clipping norm, while the clipped gradient says more than one cut's (1: one
        cut, the original recipe).
    poisson : bool
        Sample each step's users independently with probability ``batch_size / n_users``
        (needed for the DP guarantee; off, every user appears once per epoch).
    epochs, lr, batch_size, weight_decay, warmup, clip, patience, max_seconds, max_eval_users,
    num_threads, progress, device : passed to the training loop (`TrainingConfig`).
    random_state : int
    """

    name = "private_seq"

    def __init__(
        self,
        dim: int = 64,
        heads: int = 2,
        dropout: float = 0.2,
        max_len: int = 50,
        item_repr: str = "id",
        id_dim: int = 0,
        prior_last: int = 5,
        prior_decay: float = 0.6,
        popularity_init: float = 0.0,
        popularity_share: float = 0.25,
        transition_init: float = 0.0,
        transition_share: float = 0.25,
        transition_smooth: float = 50.0,
        item_transition_init: float = 0.0,
        item_transition_share: float = 0.25,
        item_transition_smooth: float = 5.0,
        cuts_per_user: int = 1,
        learn_item_bias: bool = True,
        poisson: bool = False,
        epochs: int = 100,
        lr: float = 1e-3,
        batch_size: int = 256,
        weight_decay: float = 0.0,
        warmup: float = 0.02,
        clip: float | None = 1.0,
        patience: int = 5,
        max_seconds: float | None = None,
        max_eval_users: int | None = None,
        num_threads: int | None = None,
        progress: bool = False,
        device: str = "cpu",
        random_state: int = 0,
    ):
        self.dim = dim
        self.heads = heads
        self.dropout = dropout
        self.max_len = max_len
        self.item_repr = item_repr
        self.id_dim = id_dim
        self.prior_last = prior_last
        self.prior_decay = prior_decay
        self.popularity_init = popularity_init
        self.popularity_share = popularity_share
        self.transition_init = transition_init
        self.transition_share = transition_share
        self.transition_smooth = transition_smooth
        self.item_transition_init = item_transition_init
        self.item_transition_share = item_transition_share
        self.item_transition_smooth = item_transition_smooth
        self.cuts_per_user = cuts_per_user
        self.learn_item_bias = learn_item_bias
        self.poisson = poisson
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.warmup = warmup
        self.clip = clip
        self.patience = patience
        self.max_seconds = max_seconds
        self.max_eval_users = max_eval_users
        self.num_threads = num_threads
        self.progress = progress
        self.device = device
        self.random_state = random_state

    def _spec(self, data: InteractionData) -> dict[str, Any]:
        if self.item_repr not in ("id", "attributes"):
            raise ValueError(f"item_repr must be 'id' or 'attributes', not {self.item_repr!r}")
        spec: dict[str, Any] = {"n_items": data.n_items}
        if self.item_repr == "attributes":
            indptr, indices, n_tags = tag_csr(data)  # the catalog only: no interactions
            if n_tags == 0:
                raise ValueError(
                    "PrivateSeq(item_repr='attributes') needs item attributes (item table "
                    "tags/category/brand, e.g. --item-attributes)"
                )
            spec["attrs"] = (indptr, indices, n_tags)
        return spec

    def _build(self, spec: dict[str, Any]) -> nn.Module:
        return PrivateSeqModule(
            spec["n_items"],
            self.max_len,
            self.dim,
            self.heads,
            self.dropout,
            attrs=spec.get("attrs"),
            id_dim=self.id_dim,
            prior_last=self.prior_last,
            prior_decay=self.prior_decay,
            transition_init=self.transition_init if self.item_repr == "attributes" else 0.0,
            learn_item_bias=self.learn_item_bias,
            item_transition_init=(
                self.item_transition_init if self.item_repr == "attributes" else 0.0
            ),
        )

    def fit(self, data: InteractionData, valid: Any = None) -> PrivateSeq:
        """Non-private training (the shared loop); starts the item bias at the exact
        popularity when `popularity_init` is set."""
        if self.releases():
            self._popularity_noise = 0.0
        return super().fit(data, valid)

    def releases(self) -> bool:
        """Whether statistics are released from interactions (popularity, and transitions
        when `transition_init` is set; the transition prior is normalised by the released
        popularity, so popularity is released whenever transitions are)."""
        return self.item_repr == "attributes" and bool(
            self.popularity_init or self.transition_init or self.item_transition_init
        )

    def popularity_counts(self, data: InteractionData) -> np.ndarray:
        """Per item, the sum over training users (>= 2 items) of 1 / sqrt(distinct items):
        each user's contribution has L2 norm 1."""
        counts = np.zeros(data.n_items)
        for seq in data.sequences():
            if len(seq) >= 2:
                items = np.unique(seq)
                counts[items] += 1.0 / np.sqrt(len(items))
        return counts

    def _set_item_bias(self, counts: np.ndarray) -> np.ndarray:
        counts = np.maximum(counts, 0.0)
        bias = self.popularity_init * np.log1p(counts)
        with torch.no_grad():
            self.module_.item_bias.weight[:, 0] = torch.as_tensor(bias, dtype=torch.float32)
        return counts

    def _attribute_matrix(self) -> sp.csr_matrix:
        """(n_items, n_tags) public unit-length IDF attribute rows (the model's output rows)."""
        coo = self.module_.attr_matrix  # coalesced sparse (n_items, n_tags)
        rows, cols = coo.indices().numpy()
        values = coo.values().numpy().astype(np.float64)
        out = sp.csr_matrix((values, (rows, cols)), shape=tuple(coo.shape))
        out.eliminate_zeros()  # attributes every item has weigh 0
        return out

    def transition_counts(self, data: InteractionData) -> np.ndarray:
        """(n_tags, n_tags): sum over training users of ``M_u / max(1, ||M_u||_F)`` where
        ``M_u = sum_t a(s_t) a(s_{t+1})^T`` over the user's consecutive training items and
        ``a`` is an item's public unit attribute row. Each user moves the sum by L2 <= 1 (the
        Gaussian mechanism's sensitivity for adding or removing one user)."""
        attrs = self._attribute_matrix()
        n_tags = attrs.shape[1]
        total = np.zeros((n_tags, n_tags))
        for seq in data.sequences():
            if len(seq) < 2:
                continue
            m = (attrs[seq[:-1]].T @ attrs[seq[1:]]).tocoo()
            norm = float(np.sqrt((m.data**2).sum()))
            np.add.at(total, (m.row, m.col), m.data / max(1.0, norm))
        return total

    def transition_prior(self, counts: np.ndarray, popularity: np.ndarray) -> np.ndarray:
        """Released counts -> the model's fixed transition matrix (post-processing only).

        ``T_ik = max(0, counts_ik) / (m_i + s) / sqrt(m_k + s)`` with ``m = A^T popularity``
        (the released item popularity pooled per attribute) and ``s = transition_smooth``,
        times ``10 sqrt(mean(m) + s)``: a scale from the released popularity only, so that the
        noise (which adds positive mass once clipped) does not shrink the signal."""
        attrs = self._attribute_matrix()
        m = np.asarray(attrs.T @ np.maximum(popularity, 0.0)).ravel()
        s = float(self.transition_smooth)
        t = np.maximum(counts, 0.0) / np.maximum(m[:, None] + s, 1e-9)
        t = t / np.sqrt(np.maximum(m[None, :] + s, 1e-9))
        return 10.0 * t * np.sqrt(m.mean() + s)

    def item_transition_counts(self, data: InteractionData) -> np.ndarray:
        """Values on the model's public support (`item_transition_index`: every (item j,
        attribute a) with a among j's attributes): the sum over training users of
        ``M_u / max(1, ||M_u||_F)`` where ``M_u[j, a] = sum_t a(s_t)[a] [s_{t+1} = j]`` over
        the user's consecutive training items, kept where j has a (``a`` is an item's public
        unit attribute row). Each user moves the values by L2 <= 1."""
        attrs = self._attribute_matrix()
        index = self.module_.item_transition_index.numpy()
        n_items, n_tags = attrs.shape
        position = sp.csr_matrix(
            (np.arange(1, index.shape[1] + 1), (index[0], index[1])), shape=(n_items, n_tags)
        )
        support = position.astype(bool).astype(np.float64)
        total = np.zeros(index.shape[1])
        for seq in data.sequences():
            if len(seq) < 2:
                continue
            m = attrs[seq[:-1]].multiply(support[seq[1:]]).tocoo()  # row t: into s_{t+1}
            if not m.nnz:
                continue
            cells = sp.csr_matrix((m.data, (seq[1:][m.row], m.col)), shape=(n_items, n_tags))
            cells.sum_duplicates()
            norm = float(np.sqrt((cells.data**2).sum()))
            where = np.asarray(position[cells.nonzero()]).ravel() - 1
            np.add.at(total, where, cells.data / max(1.0, norm))
        return total

    def item_transition_prior(self, counts: np.ndarray, popularity: np.ndarray) -> np.ndarray:
        """Released values -> the model's fixed attribute -> next-item scores (post-processing
        only): ``max(0, counts) / (m_a + s)``, ``m = A^T popularity`` the released item
        popularity pooled per attribute and ``s = item_transition_smooth``: roughly the
        chance that a user who just saw attribute a goes on to item j."""
        attrs = self._attribute_matrix()
        m = np.asarray(attrs.T @ np.maximum(popularity, 0.0)).ravel()
        rows = self.module_.item_transition_index[1].numpy()
        return np.maximum(counts, 0.0) / np.maximum(
            m[rows] + float(self.item_transition_smooth), 1e-9
        )

    def release_sums(self, data: InteractionData) -> dict[str, np.ndarray]:
        """Everything the model releases from interactions, before noise: item popularity,
        with `transition_init` the attribute transitions, with `item_transition_init` the
        attribute -> next-item values. Each is a sum over users of a per-user part of L2 norm
        <= 1, so sums over disjoint groups of users (federated clients) add up to these."""
        sums = {"popularity": self.popularity_counts(data)}
        if self.transition_init:
            sums["transition"] = self.transition_counts(data)
        if self.item_transition_init:
            sums["item_transition"] = self.item_transition_counts(data)
        return sums

    def set_releases(
        self,
        sums: dict[str, np.ndarray],
        pop_std: float,
        transition_std: float,
        seed: int,
        item_transition_std: float = 0.0,
    ) -> None:
        """Release `sums` (`release_sums`) with Gaussian noise of the given standard
        deviations (exact when 0) and set what the model reads from them: the item bias, the
        transition prior, the attribute -> next-item prior."""
        popularity = self._set_item_bias(_gaussian(sums["popularity"], pop_std, seed))
        if self.transition_init:
            counts = _gaussian(sums["transition"], transition_std, seed + 1)
            prior = self.transition_prior(counts, popularity)
            with torch.no_grad():
                self.module_.transition.copy_(torch.as_tensor(prior, dtype=torch.float32))
        if self.item_transition_init:
            values = _gaussian(sums["item_transition"], item_transition_std, seed + 2)
            prior = self.item_transition_prior(values, popularity)
            with torch.no_grad():
                self.module_.item_transition.copy_(torch.as_tensor(prior, dtype=torch.float32))

    def init_releases(
        self,
        data: InteractionData,
        pop_std: float,
        transition_std: float,
        seed: int,
        item_transition_std: float = 0.0,
    ) -> None:
        """`set_releases` of this data's `release_sums`."""
        self.set_releases(
            self.release_sums(data), pop_std, transition_std, seed, item_transition_std
        )

    def _prepare(self, data: InteractionData) -> None:
        """One record per user with at least two training items (one to read, one to
        predict)."""
        self._examples = [s for s in data.sequences() if len(s) >= 2]
        self.n_train_users_ = len(self._examples)
        noise = getattr(self, "_popularity_noise", None)  # set by fit / fit_private only
        if noise is not None:
            self._popularity_noise = None
            self.init_releases(data, noise, noise, self.random_state + 1, noise)

    def n_train_batches(self, batch_size: int) -> int:
        return -(-len(self._examples) // batch_size)

    def _batch(self, rng: np.random.Generator, rows: np.ndarray) -> dict[str, torch.Tensor]:
        seqs = [self._examples[r] for r in rows]
        m = int(self.cuts_per_user)
        if m > 1:
            return self._multi_cut_batch(rng, seqs, m)
        cuts = [int(rng.integers(1, len(s))) for s in seqs]  # predict s[cut] from s[:cut]
        return {
            "items": pad_histories(
                [s[:c] for s, c in zip(seqs, cuts, strict=True)], self.max_len, self.n_items_
            ),
            "targets": torch.as_tensor(
                [int(s[c]) for s, c in zip(seqs, cuts, strict=True)], dtype=torch.long
            ),
        }

    def _multi_cut_batch(
        self, rng: np.random.Generator, seqs: list[np.ndarray], m: int
    ) -> dict[str, torch.Tensor]:
        """items (B, m, L), targets (B, m): up to m distinct cuts per user, -1 targets (and
        empty histories) pad users with fewer."""
        prefixes: list[np.ndarray] = []
        targets = np.full((len(seqs), m), -1, dtype=np.int64)
        empty = np.zeros(0, dtype=np.int64)
        for i, s in enumerate(seqs):
            n_cuts = min(m, len(s) - 1)
            cuts = 1 + rng.choice(len(s) - 1, size=n_cuts, replace=False)
            prefixes.extend(s[:c] for c in cuts)
            prefixes.extend([empty] * (m - n_cuts))
            targets[i, :n_cuts] = s[cuts]
        items = pad_histories(prefixes, self.max_len, self.n_items_)
        return {
            "items": items.view(len(seqs), m, items.shape[1]),
            "targets": torch.as_tensor(targets),
        }

    def train_batches(self, rng: np.random.Generator, batch_size: int) -> Iterator[dict]:
        """Batches of users; Poisson-sampled (possibly empty) when `poisson` is set."""
        n = len(self._examples)
        steps = self.n_train_batches(batch_size)
        if self.poisson:
            q = min(1.0, batch_size / max(n, 1))
            for _ in range(steps):
                yield self._batch(rng, np.flatnonzero(rng.random(n) < q))
            return
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            yield self._batch(rng, order[start : start + batch_size])
