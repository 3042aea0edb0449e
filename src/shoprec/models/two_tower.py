"""Two-tower retrieval DNN (Covington et al., "Deep Neural Networks for YouTube
Recommendations", RecSys 2016; Yi et al., "Sampling-bias-corrected neural modeling for large
corpus item recommendations", RecSys 2019).

- Item tower: item id embedding + mean embedding of the item's attributes (`tags`, `category`,
  `brand` of the item table) -> MLP. An item with features but few interactions still gets a
  meaningful vector from its attributes.
- User tower: the history alone (the API is history-in, so a shopper is described by what they
  just did): mean of the item vectors of the history and the last item's vector -> MLP.
- Loss: softmax over the items of the batch with the log-Q popularity correction
  (`negatives="in_batch"`, the default), or over all items (`negatives="full"`). Every prefix
  of a training sequence is an example (causal mean pooling over the padded batch).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shoprec.data.interactions import InteractionData
from shoprec.models.layers import TagBag
from shoprec.models.torch_base import TorchRecommender, tag_csr


def _mlp(dim_in: int, dim: int, dropout: float) -> nn.Module:
    return nn.Sequential(
        nn.Linear(dim_in, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim)
    )


class TwoTowerModule(nn.Module):
    def __init__(
        self,
        n_items: int,
        dim: int,
        dropout: float,
        indptr: np.ndarray,
        indices: np.ndarray,
        n_tags: int,
        log_pop: np.ndarray,
        negatives: str,
        temperature: float,
    ):
        super().__init__()
        self.n_items = n_items
        # unit-scale inputs: the towers end in a normalisation, and tiny inputs would leave
        # every item vector pointing the same way (the MLP biases), with vanishing gradients
        self.item_emb = nn.Embedding(n_items + 1, dim, padding_idx=n_items)
        self.tags = TagBag(indptr, indices, n_tags, dim, std=1.0) if n_tags else None
        self.item_mlp = _mlp(2 * dim, dim, dropout)
        self.user_mlp = _mlp(2 * dim, dim, dropout)
        self.drop = nn.Dropout(dropout)
        self.register_buffer("log_pop", torch.as_tensor(log_pop, dtype=torch.float32))
        self.negatives = negatives
        self.temperature = temperature

    def item_vectors(self) -> torch.Tensor:
        """Item tower output for every item and the pad (zero row), (n_items + 1, D)."""
        ids = self.item_emb.weight
        feats = self.tags.all_items() if self.tags is not None else torch.zeros_like(ids)
        vec = F.normalize(self.item_mlp(torch.cat([ids, feats], dim=1)), dim=-1)
        pad = torch.zeros_like(vec[:1])
        return torch.cat([vec[: self.n_items], pad])

    def users(self, seqs: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """User tower at every position of right-aligned `seqs` (B, L) -> (B, L, D)."""
        x = self.drop(items[seqs])
        valid = (seqs != self.n_items).float().unsqueeze(-1)
        mean = x.cumsum(1) / valid.cumsum(1).clamp(min=1.0)
        return F.normalize(self.user_mlp(torch.cat([mean, x], dim=-1)), dim=-1)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        items = self.item_vectors()
        keep = batch["targets"] != self.n_items
        u = self.users(batch["items"], items)[keep]
        targets = batch["targets"][keep]
        if self.negatives == "full":
            logits = u @ items[: self.n_items].T / self.temperature
            return F.cross_entropy(logits, targets)
        cands, label = torch.unique(targets, return_inverse=True)
        logits = u @ items[cands].T / self.temperature - self.log_pop[cands][None, :]
        return F.cross_entropy(logits, label)

    def score_items(self, seqs: torch.Tensor) -> torch.Tensor:
        items = self.item_vectors()
        return self.users(seqs, items)[:, -1] @ items[: self.n_items].T / self.temperature


class TwoTower(TorchRecommender):
    """Two-tower DNN with item features, trained with in-batch (log-Q corrected) softmax.

    Parameters
    ----------
    dim, dropout : tower width and regularisation.
    negatives : {"in_batch", "full"}
    temperature : float
        Softmax temperature of the cosine similarity.
    use_features : bool
        Feed item attributes (tags/category/brand) into the item tower.
    max_len, epochs, lr, batch_size, weight_decay, warmup, clip, patience, max_seconds,
    max_eval_users, num_threads, progress, device, random_state : as for `SASRec`.
    """

    name = "two_tower"

    def __init__(
        self,
        dim: int = 64,
        dropout: float = 0.2,
        negatives: str = "in_batch",
        temperature: float = 0.05,
        use_features: bool = True,
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
        self.dropout = dropout
        self.negatives = negatives
        self.temperature = temperature
        self.use_features = use_features
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
        if self.negatives not in ("in_batch", "full"):
            raise ValueError("TwoTower: negatives must be 'in_batch' or 'full'")
        if self.use_features:
            indptr, indices, n_tags = tag_csr(data)
        else:
            indptr, indices, n_tags = np.zeros(data.n_items + 1, np.int64), np.zeros(0, np.int64), 0
        pop = data.item_popularity() + 1.0
        return {
            "n_items": data.n_items,
            "indptr": indptr,
            "indices": indices,
            "n_tags": n_tags,
            "log_pop": np.log(pop / pop.sum()).astype(np.float32),
        }

    def _build(self, spec: dict[str, Any]) -> nn.Module:
        return TwoTowerModule(
            spec["n_items"],
            self.dim,
            self.dropout,
            spec["indptr"],
            spec["indices"],
            spec["n_tags"],
            spec["log_pop"],
            self.negatives,
            self.temperature,
        )
