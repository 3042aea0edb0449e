"""SASRec: self-attentive sequential recommendation (Kang & McAuley, ICDM 2018).

A causal transformer over the last `max_len` items; the representation at each position
predicts the next item through the (tied) item embedding table. Trained here with softmax
cross-entropy over ALL items at every position, not the paper's binary cross-entropy with one
sampled negative: full softmax is the setting in which SASRec is a strong baseline (Klenitskiy
& Vasilev, RecSys 2023, "Turning Dross Into Gold Loss").
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from shoprec.data.interactions import InteractionData
from shoprec.models.layers import TransformerBlock, attention_mask
from shoprec.models.torch_base import TorchRecommender


def sampled_softmax(
    h: torch.Tensor,
    targets: torch.Tensor,
    items: torch.Tensor,
    negatives: int,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Softmax cross-entropy of each target against `negatives` items drawn uniformly at
    random and shared by the batch (uniform sampling needs no log-Q correction); a sampled
    item equal to the target is masked out.

    h (N, D), targets (N,), items (n_items, D).
    """
    neg = torch.randint(0, items.shape[0], (negatives,), device=h.device)
    pos = (h * items[targets]).sum(-1, keepdim=True)
    neg_logits = h @ items[neg].T
    neg_logits = neg_logits.masked_fill(neg[None, :] == targets[:, None], float("-inf"))
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
    ):
        super().__init__()
        self.negatives = negatives
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
        x = self.drop(self.item_emb(seqs) + self.pos_emb(pos)[None])
        mask = attention_mask(valid)
        for block in self.blocks:
            x = block(x, mask)
        return self.ln_out(x)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """Scores over all items for hidden states (N, D) -> (N, n_items)."""
        return h @ self.item_emb.weight[: self.n_items].T

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean softmax cross-entropy over all items at every non-padded position."""
        h = self(batch["items"])
        keep = batch["targets"] != self.n_items
        h, targets = h[keep], batch["targets"][keep]
        if self.negatives:
            return sampled_softmax(
                h,
                targets,
                self.item_emb.weight[: self.n_items],
                self.negatives,
                self.label_smoothing,
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
        return {"n_items": data.n_items}

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
        )
