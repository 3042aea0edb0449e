"""Small torch building blocks shared by the sequence models.

- `pad_histories`: item-index histories -> a right-aligned (B, L) tensor (pad = n_items).
- `attention_mask`: causal mask over real items, with the diagonal always open so a padded
  query never has an empty softmax row.
- `TransformerBlock`: a pre-LayerNorm self-attention block on `F.scaled_dot_product_attention`
  (the SASRec block, Kang & McAuley, ICDM 2018, with the pre-LN ordering of later work).
- `TagBag`: mean of the embeddings of an item's attribute ids (EmbeddingBag over a CSR).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def pad_histories(histories: Sequence[np.ndarray], max_len: int, pad: int) -> torch.Tensor:
    """Last `max_len` items of each history, right-aligned and left-padded with `pad`.

    Returns
    -------
    torch.Tensor, shape (B, L) int64, with L = min(max_len, longest history) (at least 1).
    """
    lengths = [min(len(h), max_len) for h in histories]
    width = max(1, max(lengths, default=1))
    out = np.full((len(histories), width), pad, dtype=np.int64)
    for r, (h, n) in enumerate(zip(histories, lengths, strict=True)):
        if n:
            out[r, width - n :] = np.asarray(h[-n:], dtype=np.int64)
    return torch.from_numpy(out)


def attention_mask(valid: torch.Tensor, causal: bool = True) -> torch.Tensor:
    """Boolean mask (B, 1, L, L), True where query i may attend key j.

    Keys must be real items (and, when causal, not later than the query); the diagonal is
    always allowed so padded rows stay finite.
    """
    b, length = valid.shape
    allowed = valid[:, None, None, :].expand(b, 1, length, length)
    if causal:
        tri = torch.ones(length, length, dtype=torch.bool, device=valid.device).tril()
        allowed = allowed & tri
    eye = torch.eye(length, dtype=torch.bool, device=valid.device)
    return allowed | eye


class TransformerBlock(nn.Module):
    """Pre-LN multi-head self-attention + position-wise feed-forward, with dropout.

    Input and output shape (B, L, D).
    """

    def __init__(self, dim: int, heads: int, dropout: float, ff_mult: int = 4):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(
            nn.Linear(dim, ff_mult * dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(ff_mult * dim, dim),
        )
        self.drop = nn.Dropout(dropout)
        self.attn_dropout = dropout

    def attend(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Self-attention of normalised `x` (B, L, D) under `mask` (B, 1, L, L)."""
        b, length, d = x.shape
        q, k, v = self.qkv(x).view(b, length, 3, self.heads, d // self.heads).unbind(2)
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            attn_mask=mask,
        )
        return self.proj(out.transpose(1, 2).reshape(b, length, d))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attend(self.ln1(x), mask))
        return x + self.drop(self.ff(self.ln2(x)))


class TagBag(nn.Module):
    """Mean embedding of each item's attribute ids.

    Parameters
    ----------
    indptr, indices : np.ndarray
        CSR rows per item (n_items rows; an extra empty row is added for the pad index).
    n_tags, dim : int
    """

    def __init__(
        self, indptr: np.ndarray, indices: np.ndarray, n_tags: int, dim: int, std: float = 0.02
    ):
        super().__init__()
        indptr = np.concatenate([indptr, indptr[-1:]])  # pad item: empty bag
        self.register_buffer("offsets", torch.as_tensor(indptr[:-1], dtype=torch.long))
        self.register_buffer("flat", torch.as_tensor(indices, dtype=torch.long))
        self.bag = nn.EmbeddingBag(max(n_tags, 1), dim, mode="mean")
        nn.init.normal_(self.bag.weight, std=std)

    def all_items(self) -> torch.Tensor:
        """Attribute vector of every item (and the pad), shape (n_items + 1, D)."""
        return self.bag(self.flat, self.offsets)
