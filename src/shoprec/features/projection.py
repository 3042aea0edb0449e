"""Content -> collaborative mapping: a ridge projection from content vectors to item embeddings.

Learned on warm items (those with interactions), it places a new item, known only by its
content, in the item space of any CF or sequence model (the "attribute-to-feature mapping" of
Gantner et al., ICDM 2010; DropoutNet and LightFM pursue the same goal). Any model that has an
item-embedding matrix can use it: fit on (content of warm items, their embeddings), then
`predict` the embeddings of cold items.
"""

from __future__ import annotations

import numpy as np


class ContentProjection:
    """Ridge regression content -> embedding, closed form, with an intercept.

    Parameters
    ----------
    alpha : float
        L2 penalty (scaled by the number of training items).
    match_norm : bool
        Rescale predictions so that their mean norm equals that of the training targets.
        Ridge shrinks predictions towards the mean item; without this, cold items would lose
        every full-ranking comparison with warm items on norm alone.
    """

    def __init__(self, alpha: float = 1.0, match_norm: bool = True):
        self.alpha = alpha
        self.match_norm = match_norm

    def fit(self, content: np.ndarray, embeddings: np.ndarray) -> ContentProjection:
        """Learn the mapping.

        Parameters
        ----------
        content : np.ndarray, shape (N, d_content)
        embeddings : np.ndarray, shape (N, d_emb)
        """
        c = np.asarray(content, dtype=np.float64)
        y = np.asarray(embeddings, dtype=np.float64)
        if c.ndim != 2 or y.ndim != 2 or len(c) != len(y):
            raise ValueError("ContentProjection.fit: content (N, d) and embeddings (N, k) needed")
        if len(c) < 2:
            raise ValueError("ContentProjection.fit: need at least two warm items")
        self.content_mean_ = c.mean(axis=0)
        self.target_mean_ = y.mean(axis=0)
        cc = c - self.content_mean_
        a = cc.T @ cc + self.alpha * len(c) / max(c.shape[1], 1) * np.eye(c.shape[1])
        self.coef_ = np.linalg.solve(a, cc.T @ (y - self.target_mean_))
        fitted = cc @ self.coef_ + self.target_mean_
        self.scale_ = 1.0
        if self.match_norm:
            num = float(np.linalg.norm(y, axis=1).mean())
            den = float(np.linalg.norm(fitted, axis=1).mean())
            self.scale_ = num / den if den > 0 else 1.0
        resid = ((fitted - y) ** 2).sum()
        total = ((y - self.target_mean_) ** 2).sum()
        self.r2_ = float(1 - resid / total) if total > 0 else 0.0
        return self

    def predict(self, content: np.ndarray) -> np.ndarray:
        """Embeddings for items with content `content` (N, d_content) -> (N, d_emb) float32."""
        c = np.asarray(content, dtype=np.float64) - self.content_mean_
        return ((c @ self.coef_ + self.target_mean_) * self.scale_).astype(np.float32)
