"""The network behind `PrivateSeq` (`shoprec.models.private_seq`): one pre-LN attention block
read at the last position, with per-item tables or item vectors from the public catalog's
attributes, and the public/released priors scored in attribute space (see `PrivateSeqModule`).
Everything here keeps per-user gradients cheap for Opacus: a user is one batch row.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


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
            support = keep & (w_out[:n_items].flatten() > 0)
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
