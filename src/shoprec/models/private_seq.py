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
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shoprec.data.interactions import InteractionData
from shoprec.models.layers import pad_histories
from shoprec.models.torch_base import TorchRecommender


class PrivateSeqModule(nn.Module):
    """Embeddings -> one pre-LN attention block evaluated at the last position only ->
    LayerNorm -> Linear(D, n_items).

    With one block, SASRec's output at the last position needs only the last query: keys and
    values come from every position, the feed-forward runs on one vector per user. That is L
    times less feed-forward work than running the block on every position.
    """

    def __init__(self, n_items: int, max_len: int, dim: int, heads: int, dropout: float):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.n_items = n_items
        self.heads = heads
        self.item_emb = nn.Embedding(n_items + 1, dim, padding_idx=n_items)
        self.pos_emb = nn.Embedding(max_len, dim)
        self.drop = nn.Dropout(dropout)
        self.ln1 = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.ln_out = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, n_items)
        nn.init.normal_(self.item_emb.weight, std=0.02)
        nn.init.normal_(self.pos_emb.weight, std=0.02)
        with torch.no_grad():
            self.item_emb.weight[n_items].zero_()

    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        """Scores (B, n_items) for right-aligned histories `seqs` (B, L), pad = n_items."""
        b, length = seqs.shape
        valid = seqs != self.n_items
        n_pos = self.pos_emb.num_embeddings
        # one row per user (not broadcast): Opacus needs the batch dimension on every input
        pos = torch.arange(n_pos - length, n_pos, device=seqs.device).repeat(b, 1)
        x = self.drop(self.item_emb(seqs) + self.pos_emb(pos))  # (B, L, D)
        h = self.ln1(x)
        d = x.shape[-1] // self.heads
        q = self.q(h[:, -1]).view(b, self.heads, 1, d)
        k, v = self.kv(h).view(b, length, 2, self.heads, d).unbind(2)
        mask = valid.clone()
        mask[:, -1] = True  # an empty history still has a (padding) key to attend to
        att = F.scaled_dot_product_attention(
            q, k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask[:, None, None, :]
        )
        z = x[:, -1] + self.drop(self.proj(att.reshape(b, -1)))
        z = z + self.drop(self.ff(self.ln2(z)))
        return self.out(self.ln_out(z))

    def per_example_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Softmax cross-entropy over all items, one value per user: shape (B,)."""
        return F.cross_entropy(self(batch["items"]), batch["targets"], reduction="none")

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
        return {"n_items": data.n_items}

    def _build(self, spec: dict[str, Any]) -> nn.Module:
        return PrivateSeqModule(spec["n_items"], self.max_len, self.dim, self.heads, self.dropout)

    def _prepare(self, data: InteractionData) -> None:
        """One record per user with at least two training items (one to read, one to
        predict)."""
        self._examples = [s for s in data.sequences() if len(s) >= 2]
        self.n_train_users_ = len(self._examples)

    def n_train_batches(self, batch_size: int) -> int:
        return -(-len(self._examples) // batch_size)

    def _batch(self, rng: np.random.Generator, rows: np.ndarray) -> dict[str, torch.Tensor]:
        seqs = [self._examples[r] for r in rows]
        cuts = [int(rng.integers(1, len(s))) for s in seqs]  # predict s[cut] from s[:cut]
        return {
            "items": pad_histories(
                [s[:c] for s, c in zip(seqs, cuts, strict=True)], self.max_len, self.n_items_
            ),
            "targets": torch.as_tensor(
                [int(s[c]) for s, c in zip(seqs, cuts, strict=True)], dtype=torch.long
            ),
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
