"""SASRec: self-attentive sequential recommendation (Kang & McAuley, ICDM 2018).

A causal transformer over the last `max_len` items; the representation at each position
predicts the next item through the (tied) item embedding table. Trained here with softmax
cross-entropy over ALL items at every position, not the paper's binary cross-entropy with one
sampled negative: full softmax is the setting in which SASRec is a strong baseline (Klenitskiy
& Vasilev, RecSys 2023, "Turning Dross Into Gold Loss").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shoprec.data.interactions import InteractionData
from shoprec.models.layers import TagBag, TransformerBlock, attention_mask
from shoprec.models.torch_base import TorchRecommender, tag_csr


def sampled_softmax(
    h: torch.Tensor,
    targets: torch.Tensor,
    items: torch.Tensor,
    negatives: int,
    label_smoothing: float = 0.0,
    hard: int | None = None,
) -> torch.Tensor:
    """Softmax cross-entropy of each target against `negatives` items drawn uniformly at
    random and shared by the batch (uniform sampling needs no log-Q correction); a sampled
    item equal to the target is masked out.

    With `hard`, only the `hard` highest-scoring sampled items of each row are kept: the
    model being trained picks its own hardest negatives, the adversarial (GAN-style)
    generator of IRGAN (Wang et al., SIGIR 2017) reduced to dynamic negative sampling
    (Zhang et al., SIGIR 2013).

    h (N, D), targets (N,), items (n_items, D).
    """
    neg = torch.randint(0, items.shape[0], (negatives,), device=h.device)
    pos = (h * items[targets]).sum(-1, keepdim=True)
    neg_logits = h @ items[neg].T
    neg_logits = neg_logits.masked_fill(neg[None, :] == targets[:, None], float("-inf"))
    if hard is not None and hard < negatives:
        neg_logits = neg_logits.topk(hard, dim=1).values
    logits = torch.cat([pos, neg_logits], dim=1)
    zeros = torch.zeros(len(targets), dtype=torch.long, device=h.device)
    return F.cross_entropy(logits, zeros, label_smoothing=label_smoothing)


class SASRecModule(nn.Module):
    """Item + position embeddings -> causal transformer blocks -> tied output layer."""

    def __init__(
        self,
        n_items: int,
        max_len: int,
        dim: int,
        layers: int,
        heads: int,
        dropout: float,
        label_smoothing: float,
        negatives: int | None = None,
        hard_negatives: int | None = None,
        tags: tuple[np.ndarray, np.ndarray, int] | None = None,
    ):
        super().__init__()
        # item attributes (S3-Rec's item2attributes) enter as a mean attribute embedding
        # added to the item embedding, in the input and in the output layer
        self.tags = TagBag(*tags, dim) if tags is not None and tags[2] > 0 else None
        self.negatives = negatives
        self.hard_negatives = hard_negatives
        self.n_items = n_items
        self.item_emb = nn.Embedding(n_items + 1, dim, padding_idx=n_items)
        self.pos_emb = nn.Embedding(max_len, dim)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads, dropout) for _ in range(layers))
        self.ln_out = nn.LayerNorm(dim)
        self.label_smoothing = label_smoothing
        nn.init.normal_(self.item_emb.weight, std=0.02)
        nn.init.normal_(self.pos_emb.weight, std=0.02)

    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        """Hidden states (B, L, D) of right-aligned item sequences `seqs` (B, L)."""
        valid = seqs != self.n_items
        length = seqs.shape[1]
        pos = torch.arange(
            self.pos_emb.num_embeddings - length, self.pos_emb.num_embeddings, device=seqs.device
        )
        x = self.drop(self.item_table()[seqs] + self.pos_emb(pos)[None])
        mask = attention_mask(valid)
        for block in self.blocks:
            x = block(x, mask)
        return self.ln_out(x)

    def item_table(self) -> torch.Tensor:
        """Item vectors (n_items + 1, D): id embedding (+ attribute embedding)."""
        if self.tags is None:
            return self.item_emb.weight
        return self.item_emb.weight + self.tags.all_items()

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """Scores over all items for hidden states (N, D) -> (N, n_items)."""
        return h @ self.item_table()[: self.n_items].T

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean softmax cross-entropy over all items at every non-padded position."""
        h = self(batch["items"])
        keep = batch["targets"] != self.n_items
        h, targets = h[keep], batch["targets"][keep]
        if self.negatives:
            return sampled_softmax(
                h,
                targets,
                self.item_table()[: self.n_items],
                self.negatives,
                self.label_smoothing,
                self.hard_negatives,
            )
        return F.cross_entropy(self.logits(h), targets, label_smoothing=self.label_smoothing)

    def score_items(self, seqs: torch.Tensor) -> torch.Tensor:
        """Scores (B, n_items) from the last position."""
        return self.logits(self(seqs)[:, -1])


class SASRec(TorchRecommender):
    """SASRec with full softmax cross-entropy.

    Parameters
    ----------
    dim, layers, heads, dropout : transformer size and regularisation.
    max_len : int
        Most recent items used as input.
    label_smoothing : float
        Label smoothing of the cross-entropy.
    negatives : int or None
        None (default): softmax over all items. An int: sampled softmax against that many
        uniformly drawn negatives per batch (much cheaper on CPU for large catalogues).
    hard_negatives : int or None
        Keep only this many hardest of the sampled negatives per position (adversarial
        hard-negative sampling); needs `negatives`.
    use_attributes : bool
        Add a mean embedding of each item's attributes (item table tags/category/brand).
    all_windows : bool
        Also train on earlier non-overlapping `max_len` windows of long histories.
    epochs, lr, batch_size, weight_decay, warmup, clip, patience, max_seconds, max_eval_users,
    num_threads, progress, device : passed to the training loop (`TrainingConfig`).
    random_state : int
        Seed of initialisation and shuffling.
    """

    name = "sasrec"

    def __init__(
        self,
        dim: int = 64,
        layers: int = 2,
        heads: int = 2,
        dropout: float = 0.3,
        max_len: int = 50,
        label_smoothing: float = 0.0,
        negatives: int | None = None,
        hard_negatives: int | None = None,
        use_attributes: bool = False,
        all_windows: bool = False,
        epochs: int = 200,
        lr: float = 1e-3,
        batch_size: int = 128,
        weight_decay: float = 0.0,
        warmup: float = 0.02,
        clip: float | None = 1.0,
        patience: int = 5,
        max_seconds: float | None = 600.0,
        max_eval_users: int | None = None,
        num_threads: int | None = None,
        progress: bool = False,
        device: str = "cpu",
        random_state: int = 0,
    ):
        self.dim = dim
        self.layers = layers
        self.heads = heads
        self.dropout = dropout
        self.max_len = max_len
        self.label_smoothing = label_smoothing
        self.negatives = negatives
        self.hard_negatives = hard_negatives
        self.use_attributes = use_attributes
        self.all_windows = all_windows
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
        spec: dict[str, Any] = {"n_items": data.n_items}
        if self.use_attributes:
            spec["indptr"], spec["indices"], spec["n_tags"] = tag_csr(data)
        return spec

    def _build(self, spec: dict[str, Any]) -> nn.Module:
        return SASRecModule(
            spec["n_items"],
            self.max_len,
            self.dim,
            self.layers,
            self.heads,
            self.dropout,
            self.label_smoothing,
            self.negatives,
            self.hard_negatives,
            (spec["indptr"], spec["indices"], spec["n_tags"]) if "indptr" in spec else None,
        )
