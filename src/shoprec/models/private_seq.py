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
import torch.nn.functional as F
from torch import nn

from shoprec.data.interactions import InteractionData
from shoprec.models.layers import pad_histories
from shoprec.models.torch_base import TorchRecommender, tag_csr


def attribute_tables(
    indptr: np.ndarray, indices: np.ndarray, n_items: int, n_tags: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Public item x attribute tables from the catalog's attribute CSR (`tag_csr`).

    Returns
    -------
    ids : (n_items + 1, K) long
        Each item's attribute ids, padded with `n_tags` (the pad item has none).
    w_in : (n_items + 1, K) float
        Input weights: the item's IDF weights divided by their sum (a weighted mean).
    w_out : (n_items + 1, K) float
        Output weights: the IDF weights divided by their L2 norm (unit-length item rows).

    IDF is ``log((n + 1) / (df + 1))`` over the catalog, as in `AttributeKNN`: a brand shared
    by a few items weighs more than a top-level category. Nothing here reads interactions.
    """
    lengths = np.diff(indptr)
    k = max(int(lengths.max()) if len(lengths) else 0, 1)
    df = np.bincount(indices, minlength=n_tags).astype(np.float64)
    idf = np.log((n_items + 1.0) / (df + 1.0))
    ids = np.full((n_items + 1, k), n_tags, dtype=np.int64)
    w = np.zeros((n_items + 1, k), dtype=np.float64)
    rows = np.repeat(np.arange(n_items), lengths)
    cols = np.arange(len(indices)) - np.repeat(indptr[:-1], lengths)
    ids[rows, cols] = indices
    w[rows, cols] = idf[indices]
    w_in = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
    w_out = w / np.maximum(np.sqrt((w**2).sum(axis=1, keepdims=True)), 1e-12)
    return (
        torch.as_tensor(ids),
        torch.as_tensor(w_in, dtype=torch.float32),
        torch.as_tensor(w_out, dtype=torch.float32),
    )


class AttributeGate(nn.Module):
    """``x * weight``: one learned scale per attribute for the public attribute prior.

    Opacus has no per-sample rule for this layer and derives it with functorch (cheap: one
    weight vector).
    """

    def __init__(self, n: int, init: float):
        super().__init__()
        self.weight = nn.Parameter(torch.full((n,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight


def _gaussian(values: np.ndarray, std: float, seed: int) -> np.ndarray:
    """`values` plus N(0, std^2) noise from a generator seeded with `seed` (unchanged at 0)."""
    if std <= 0:
        return values
    return values + np.random.default_rng(seed).normal(0.0, std, values.shape)


def per_user_loss(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over all items, one value per user (B,).

    ``scores`` (B, n_items) with ``targets`` (B,); or (B, m, n_items) with (B, m): the mean
    over the user's cuts whose target is >= 0 (-1 pads users with fewer than m cuts)."""
    if targets.dim() == 1:
        return F.cross_entropy(scores, targets, reduction="none")
    per = F.cross_entropy(
        scores.reshape(-1, scores.shape[-1]), targets.reshape(-1), reduction="none", ignore_index=-1
    ).view(targets.shape)
    n = (targets >= 0).sum(1).clamp(min=1)
    return per.sum(1) / n


class PrivateSeqModule(nn.Module):
    """Item vectors -> one pre-LN attention block evaluated at the last position only ->
    LayerNorm -> scores over all items.

    With one block, SASRec's output at the last position needs only the last query: keys and
    values come from every position, the feed-forward runs on one vector per user. That is L
    times less feed-forward work than running the block on every position.

    Item representations (`attrs` None: per-item tables, SASRec's; `attrs` given: from the
    public catalog, the DP-friendly design):

    - ``attrs = None``: an item is a learned row of a (n_items + 1) x D table, and the output
      layer is a learned (n_items) x D matrix and bias;
    - ``attrs = (indptr, indices, n_tags)``: an item's input vector is the IDF-weighted mean of
      its attributes' learned embeddings; its score is ``a_j . u + b_j`` where ``a_j`` is the
      item's fixed, unit-length IDF attribute row (public), ``u = W h + g * p`` is an
      attribute-space query (a learned projection of the sequence state plus a learned
      per-attribute gate `g` on `p`, the recency-decayed attribute profile of the last
      `prior_last` items, AttributeKNN's score made learnable) and ``b_j`` a learned item
      bias. `id_dim > 0` adds a low-rank per-item correction (an id embedding of `id_dim`
      projected to D on input; a D -> id_dim -> n_items output). Learned parameters are then
      O(n_tags * D + n_items * (1 + 2 id_dim)) instead of O(n_items * D), which is what
      DP-SGD's noise (added to every parameter) scales with.
    """

    def __init__(
        self,
        n_items: int,
        max_len: int,
        dim: int,
        heads: int,
        dropout: float,
        attrs: tuple[np.ndarray, np.ndarray, int] | None = None,
        id_dim: int = 0,
        prior_last: int = 5,
        prior_decay: float = 0.6,
        prior_init: float = 3.0,
        transition_init: float = 0.0,
        learn_item_bias: bool = True,
        item_transition_init: float = 0.0,
    ):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.n_items = n_items
        self.heads = heads
        self.attributes = attrs is not None
        self.pos_emb = nn.Embedding(max_len, dim)
        self.drop = nn.Dropout(dropout)
        self.ln1 = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.ln_out = nn.LayerNorm(dim)
        nn.init.normal_(self.pos_emb.weight, std=0.02)
        if attrs is None:
            self.item_emb = nn.Embedding(n_items + 1, dim, padding_idx=n_items)
            self.out = nn.Linear(dim, n_items)
            nn.init.normal_(self.item_emb.weight, std=0.02)
            with torch.no_grad():
                self.item_emb.weight[n_items].zero_()
            return
        indptr, indices, n_tags = attrs
        if n_tags < 1:
            raise ValueError("PrivateSeqModule: no item has attributes")
        self.n_tags = int(n_tags)
        self.prior_last = int(prior_last)
        self.prior_decay = float(prior_decay)
        ids, w_in, w_out = attribute_tables(
            np.asarray(indptr), np.asarray(indices), n_items, n_tags
        )
        # public, fixed, rebuilt from the spec: not part of the state_dict
        self.register_buffer("attr_ids", ids, persistent=False)
        self.register_buffer("attr_w_in", w_in, persistent=False)
        self.register_buffer("attr_w_out", w_out, persistent=False)
        rows = torch.arange(n_items).repeat_interleave(ids.shape[1])
        keep = ids[:n_items].flatten() < n_tags
        self.register_buffer(
            "attr_matrix",  # (n_items, n_tags) sparse: unit-length IDF rows
            torch.sparse_coo_tensor(
                torch.stack([rows[keep], ids[:n_items].flatten()[keep]]),
                w_out[:n_items].flatten()[keep],
                (n_items, n_tags),
                check_invariants=True,
            ).coalesce(),
            persistent=False,
        )
        self.attr_emb = nn.Embedding(n_tags + 1, dim, padding_idx=n_tags)
        nn.init.normal_(self.attr_emb.weight, std=0.02)
        self.out_attr = nn.Linear(dim, n_tags, bias=False)
        nn.init.normal_(self.out_attr.weight, std=0.02)
        self.gate = AttributeGate(n_tags, prior_init) if prior_last > 0 else None
        self.trans_gate = None
        if transition_init:
            if prior_last <= 0:
                raise ValueError("PrivateSeqModule: the transition prior needs prior_last > 0")
            self.trans_gate = AttributeGate(n_tags, transition_init)
            # released (noisy under DP) normalised attribute transitions; saved with the
            # weights: it is computed from interactions (see `PrivateSeq.init_releases`)
            self.register_buffer("transition", torch.zeros(n_tags, n_tags))
        self.item_trans_gate = None
        if item_transition_init:
            if prior_last <= 0:
                raise ValueError("PrivateSeqModule: the item-transition prior needs prior_last > 0")
            self.item_trans_gate = AttributeGate(n_tags, item_transition_init)
            # the public support: (item, attribute) for every attribute an item has (with a
            # non-zero IDF weight: an attribute every item has carries nothing)
            support = (ids[:n_items].flatten() < n_tags) & (w_out[:n_items].flatten() > 0)
            self.register_buffer(
                "item_transition_index",
                torch.stack([rows[support], ids[:n_items].flatten()[support]]),
                persistent=False,
            )
            # released (noisy under DP), normalised attribute -> next-item transitions on that
            # support; saved with the weights (see `PrivateSeq.init_releases`)
            self.register_buffer("item_transition", torch.zeros(int(support.sum())))
        self.item_bias = nn.Linear(1, n_items, bias=False)
        nn.init.zeros_(self.item_bias.weight)
        self.item_bias.weight.requires_grad_(bool(learn_item_bias))
        self.id_dim = int(id_dim)
        if self.id_dim:
            self.id_emb = nn.Embedding(n_items + 1, self.id_dim, padding_idx=n_items)
            self.id_up = nn.Linear(self.id_dim, dim, bias=False)
            self.id_down = nn.Linear(dim, self.id_dim, bias=False)
            self.id_out = nn.Linear(self.id_dim, n_items, bias=False)
            for layer in (self.id_emb, self.id_out):
                nn.init.normal_(layer.weight, std=0.02)
            with torch.no_grad():
                self.id_emb.weight[n_items].zero_()

    def _item_vectors(self, seqs: torch.Tensor) -> torch.Tensor:
        """(B, m, L) item ids -> (B, m, L, D). Layers see at most 3-D inputs with the user
        first (what Opacus' per-user gradient rules expect)."""
        b = seqs.shape[0]
        flat = seqs.reshape(b, -1)
        if not self.attributes:
            return self.item_emb(flat).view(*seqs.shape, -1)
        ids = self.attr_ids[seqs]  # (B, m, L, K)
        x = (
            self.attr_emb(ids.reshape(b, -1)).view(*ids.shape, -1) * self.attr_w_in[seqs][..., None]
        ).sum(3)
        if self.id_dim:
            x = x + self.id_up(self.id_emb(flat)).view(*seqs.shape, -1)
        return x

    def _profile(self, seqs: torch.Tensor) -> torch.Tensor:
        """(B, n_tags): sum over the last `prior_last` items of decay**age x unit IDF row."""
        last = seqs[:, -self.prior_last :]
        ages = torch.arange(last.shape[1] - 1, -1, -1, device=seqs.device)
        decay = self.prior_decay ** ages.float()  # pad items have zero weights
        w = self.attr_w_out[last] * decay[None, :, None]
        out = torch.zeros(seqs.shape[0], self.n_tags + 1, device=seqs.device)
        out.scatter_add_(1, self.attr_ids[last].flatten(1), w.flatten(1))
        return out[:, : self.n_tags]

    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        """Scores (B, n_items) for right-aligned histories `seqs` (B, L), pad = n_items; or
        (B, m, n_items) for (B, m, L): m histories per user (training cuts of one user's
        sequence, one DP record), kept under the user's row so that per-user gradients are
        the gradients of the user's whole loss."""
        if seqs.dim() == 2:
            return self(seqs[:, None, :])[:, 0]
        b, m, length = seqs.shape
        valid = seqs != self.n_items
        n_pos = self.pos_emb.num_embeddings
        # one row per user (not broadcast): Opacus needs the batch dimension on every input
        pos = torch.arange(n_pos - length, n_pos, device=seqs.device).repeat(b, m)
        x = self._item_vectors(seqs) + self.pos_emb(pos).view(b, m, length, -1)
        x = self.drop(x)  # (B, m, L, D)
        dim = x.shape[-1]
        h = self.ln1(x.reshape(b, m * length, dim)).view(b, m, length, dim)
        d = dim // self.heads
        q = self.q(h[:, :, -1]).view(b, m, self.heads, 1, d)
        kv = self.kv(h.reshape(b, m * length, dim)).view(b, m, length, 2, self.heads, d)
        k, v = kv.unbind(3)  # (B, m, L, heads, d)
        mask = valid.clone()
        mask[..., -1] = True  # an empty history still has a (padding) key to attend to
        att = F.scaled_dot_product_attention(
            q, k.transpose(2, 3), v.transpose(2, 3), attn_mask=mask[:, :, None, None, :]
        )
        z = x[:, :, -1] + self.drop(self.proj(att.reshape(b, m, dim)))
        z = z + self.drop(self.ff(self.ln2(z)))
        z = self.ln_out(z)  # (B, m, D)
        if not self.attributes:
            return self.out(z)
        u = self.out_attr(z)  # (B, m, n_tags): a query in attribute space
        if self.gate is not None:
            profile = self._profile(seqs.reshape(b * m, length)).view(b, m, -1)
            u = u + self.gate(profile)
            if self.trans_gate is not None:
                u = u + self.trans_gate(profile @ self.transition)
        scores = torch.sparse.mm(self.attr_matrix, u.reshape(b * m, -1).T).T
        if self.item_trans_gate is not None:
            to_items = torch.sparse_coo_tensor(  # (n_items, n_tags): attribute -> next item
                self.item_transition_index,
                self.item_transition,
                (self.n_items, self.n_tags),
                check_invariants=False,  # valid by construction
            )
            scores = (
                scores + torch.sparse.mm(to_items, self.item_trans_gate(profile).flatten(0, 1).T).T
            )
        scores = scores.reshape(b, m, -1) + self.item_bias(torch.ones(b, m, 1, device=seqs.device))
        if self.id_dim:
            scores = scores + self.id_out(self.id_down(z))
        return scores

    def per_example_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Softmax cross-entropy over all items, one value per user: shape (B,)."""
        return per_user_loss(self(batch["items"]), batch["targets"])

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        per = self.per_example_loss(batch)
        return per.mean() if len(per) else per.sum()  # a Poisson batch may be empty

    def score_items(self, seqs: torch.Tensor) -> torch.Tensor:
        return self(seqs)


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

    def init_item_bias(self, data: InteractionData, noise_std: float, seed: int) -> np.ndarray:
        """Item bias <- popularity_init * log(1 + max(0, counts + N(0, noise_std^2))).

        Returns the released counts, clipped at 0."""
        counts = _gaussian(self.popularity_counts(data), noise_std, seed)
        return self._set_item_bias(counts)

    def _set_item_bias(self, counts: np.ndarray) -> np.ndarray:
        counts = np.maximum(counts, 0.0)
        bias = self.popularity_init * np.log1p(counts)
        with torch.no_grad():
            self.module_.item_bias.weight[:, 0] = torch.as_tensor(bias, dtype=torch.float32)
        return counts

    def _attribute_matrix(self) -> sp.csr_matrix:
        """(n_items, n_tags) public unit-length IDF attribute rows (the model's output rows)."""
        return sp.csr_matrix(self.module_.attr_matrix.to_dense().numpy().astype(np.float64))

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
