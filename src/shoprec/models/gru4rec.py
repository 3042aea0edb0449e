"""GRU4Rec: session-based recommendation with recurrent networks (Hidasi et al., ICLR 2016),
trained with softmax cross-entropy over all items at every position, the loss under which
GRU4Rec is competitive (Hidasi & Czapp, RecSys 2023, "The effect of third party
implementations on reproducibility").
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from shoprec.data.interactions import InteractionData
from shoprec.models.torch_base import TorchRecommender


class GRU4RecModule(nn.Module):
    """Item embedding -> GRU -> projection onto the item embedding table (tied)."""

    def __init__(self, n_items: int, dim: int, layers: int, dropout: float):
        super().__init__()
        self.n_items = n_items
        self.item_emb = nn.Embedding(n_items + 1, dim, padding_idx=n_items)
        self.drop = nn.Dropout(dropout)
        self.gru = nn.GRU(
            dim, dim, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0
        )
        self.out = nn.Linear(dim, dim)
        nn.init.normal_(self.item_emb.weight, std=0.02)

    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        """Hidden states (B, L, D) of right-aligned sequences (B, L).

        The GRU runs on packed, left-aligned sequences so leading pads never touch its
        state (a user's score must not depend on who else is in the batch)."""
        width = seqs.shape[1]
        lengths = (seqs != self.n_items).sum(1).clamp(min=1)
        shift = (width - lengths)[:, None]
        pos = torch.arange(width, device=seqs.device)[None, :]
        left = torch.gather(seqs, 1, (pos + shift).clamp(max=width - 1))
        packed = nn.utils.rnn.pack_padded_sequence(
            self.drop(self.item_emb(left)), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        h, _ = self.gru(packed)
        h, _ = nn.utils.rnn.pad_packed_sequence(h, batch_first=True, total_length=width)
        right = torch.gather(h, 1, (pos - shift).clamp(min=0)[:, :, None].expand_as(h))
        return self.out(self.drop(right))

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean softmax cross-entropy over all items at every non-padded position."""
        h = self(batch["items"])
        keep = batch["targets"] != self.n_items
        logits = h[keep] @ self.item_emb.weight[: self.n_items].T
        return F.cross_entropy(logits, batch["targets"][keep])

    def score_items(self, seqs: torch.Tensor) -> torch.Tensor:
        return self(seqs)[:, -1] @ self.item_emb.weight[: self.n_items].T


class GRU4Rec(TorchRecommender):
    """GRU4Rec with full softmax cross-entropy.

    Parameters
    ----------
    dim, layers, dropout : GRU size and regularisation.
    max_len : int
        Most recent items used as input.
    epochs, lr, batch_size, weight_decay, warmup, clip, patience, max_seconds, max_eval_users,
    num_threads, progress, device : passed to the training loop (`TrainingConfig`).
    random_state : int
    """

    name = "gru4rec"

    def __init__(
        self,
        dim: int = 64,
        layers: int = 1,
        dropout: float = 0.3,
        max_len: int = 50,
        epochs: int = 200,
        lr: float = 2e-3,
        batch_size: int = 256,
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
        self.dropout = dropout
        self.max_len = max_len
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
        return GRU4RecModule(spec["n_items"], self.dim, self.layers, self.dropout)
