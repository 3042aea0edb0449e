"""DP-SGD with a per-user guarantee, on the shared training loop (Opacus 1.6).

The guarantee
-------------
(epsilon, delta) user-level differential privacy for the model weights with respect to adding
or removing *all* training interactions of one user, under these conditions:

- one DP record is one user: a `PrivateSeq` batch row is one user's history (up to a random
  cut) and the item that follows it, or with ``cuts_per_user = m`` up to m cuts of the user's
  sequence whose losses are averaged, so a user never contributes more than one row to a step
  and the clipping bounds the whole row;
- each step includes each user independently with probability ``q = batch_size / n_users``
  (Poisson sampling, `PrivateSeq(poisson=True)`);
- each user's gradient is clipped to L2 norm ``max_grad_norm`` (Opacus ghost clipping: the
  per-user norms come from Opacus' norm samplers and a second backward pass weights each
  user's loss by its clipping factor) and Gaussian noise of standard deviation
  ``noise_multiplier * max_grad_norm`` is added to the sum, divided by the expected batch size;
- the noise multiplier is calibrated with Opacus' RDP accountant (or, with
  ``accountant="prv"``, its tighter PRV accountant) for the planned number of steps, and
  the epsilon actually spent is recomputed from the steps taken;
- no choice is made with private data: no early stopping on validation users (it would spend
  privacy), a fixed number of epochs, hyper-parameters chosen beforehand.

Not covered: the item vocabulary and the catalog's item attributes (treated as public: with
``PrivateSeq(item_repr="attributes")`` item vectors, their IDF weights and the attribute
prior are functions of the catalog only, never of interactions, so they cost no privacy),
data-dependent cleaning before training (k-core filters), and the serve-time history the model
reads (it is used at request time, never trained on). Everything learned from interactions
(item bias, per-item correction, attribute embeddings, encoder) is a model weight and goes
through the clipped, noised gradient, except the optional one-shot releases: item popularity
(`PrivateSeq(popularity_init=...)`), attribute -> next-attribute transition counts
(`transition_init`) and attribute -> next-item transition counts on the catalog's public
(item, attribute) support (`item_transition_init`), each a sum over users of a per-user
vector of L2 norm <= 1, released once with the Gaussian mechanism (sensitivity 1, noise
multiplier calibrated so that the release alone spends its `*_share` of epsilon) and
composed with DP-SGD in the same accountant; the reported epsilon is the composition.

Training runs in `shoprec.training.loop`: `DPLossModule` replaces the model's module during
training and its `loss` returns a surrogate whose gradient *is* the clipped, noised gradient
(its value is the ordinary mean loss), so the loop's optimiser (AdamW, DP-Adam by
post-processing) steps on private gradients; the loop's own clipping is switched off.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from shoprec.data.interactions import InteractionData
from shoprec.models.private_seq_module import per_user_loss
from shoprec.training.loop import TrainingConfig, train

GUARANTEE = (
    "user-level (epsilon, delta)-DP of the model weights: adding or removing all of one "
    "user's training interactions; Poisson sampling of users, one record (batch row) per "
    "user per step, per-user gradient clipping, RDP or PRV accounting (see accountant)"
)


@dataclass(frozen=True)
class PrivacyReport:
    """What a private training run spent; stored in the artifact's metadata."""

    epsilon: float
    delta: float
    noise_multiplier: float
    max_grad_norm: float
    sample_rate: float
    steps: int
    n_users: int
    popularity_noise_multiplier: float = 0.0  # > 0: item popularity released (Gaussian)
    transition_noise_multiplier: float = 0.0  # > 0: attribute transitions released (Gaussian)
    item_transition_noise_multiplier: float = 0.0  # > 0: attribute -> next item released
    unit: str = "user"
    accountant: str = "rdp"
    guarantee: str = GUARANTEE

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if math.isinf(d["epsilon"]):
            d["epsilon"] = "inf"
        return d


def _opacus() -> Any:
    try:
        import opacus
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "differentially private training needs Opacus: pip install 'shoprec[privacy]'"
        ) from exc
    return opacus


class DPLossModule(nn.Module):
    """Wraps a module with ``per_example_loss``; ``loss(batch)`` privatises the gradient.

    Parameters
    ----------
    inner : nn.Module
        Has ``forward(items) -> logits (B, n_items)`` and ``score_items``.
    noise_multiplier, max_grad_norm : float
    expected_batch_size : float
        ``q * n_users``; the noisy sum is divided by it (Opacus' convention under Poisson
        sampling, so the sensitivity does not depend on the sampled batch size).
    seed : int
        Seeds the noise generator.
    """

    def __init__(
        self,
        inner: nn.Module,
        noise_multiplier: float,
        max_grad_norm: float,
        expected_batch_size: float,
        seed: int = 0,
    ):
        super().__init__()
        from opacus.grad_sample.grad_sample_module_fast_gradient_clipping import (
            GradSampleModuleFastGradientClipping,
        )

        self.inner = inner
        self.noise_multiplier = float(noise_multiplier)
        self.max_grad_norm = float(max_grad_norm)
        self.expected_batch_size = float(expected_batch_size)
        self._gsm = [
            GradSampleModuleFastGradientClipping(
                inner, loss_reduction="sum", max_grad_norm=max_grad_norm, use_ghost_clipping=True
            )
        ]  # in a list: not a registered submodule, so state_dict keys stay those of `inner`
        self._gen = torch.Generator().manual_seed(seed)
        self.steps = 0
        self.last_clipped_fraction = 0.0

    def score_items(self, seqs: torch.Tensor) -> torch.Tensor:
        return self.inner.score_items(seqs)

    def private_gradient(self, batch: dict[str, torch.Tensor]) -> tuple[list[torch.Tensor], float]:
        """Clipped, noised, averaged gradient per parameter, and the mean loss."""
        gsm = self._gsm[0]
        params = [p for p in self.inner.parameters() if p.requires_grad]
        for p in params:
            p.grad = None
        n = int(batch["targets"].shape[0])
        mean_loss = 0.0
        if n:
            per = per_user_loss(gsm(batch["items"]), batch["targets"])
            with warnings.catch_warnings():  # Opacus' hooks on a module whose input is ids
                warnings.filterwarnings("ignore", message="Full backward hook")
                per.sum().backward(retain_graph=True)  # hooks compute per-user gradient norms
                coef = gsm.get_clipping_coef()
                self.last_clipped_fraction = float((coef < 1.0).float().mean())
                for p in params:
                    p.grad = None
                gsm.disable_hooks()
                try:
                    (coef.detach() * per).sum().backward()  # sum of clipped per-user gradients
                finally:
                    gsm.enable_hooks()
            mean_loss = float(per.detach().mean())
        grads = []
        std = self.noise_multiplier * self.max_grad_norm
        for p in params:
            g = p.grad if p.grad is not None else torch.zeros_like(p)
            if std > 0:
                g = g + torch.normal(0.0, std, size=p.shape, generator=self._gen).to(p.device)
            grads.append(g / self.expected_batch_size)
            p.grad = None
        self.steps += 1
        return grads, mean_loss

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """A surrogate: value = mean loss, gradient = the private gradient."""
        grads, mean_loss = self.private_gradient(batch)
        params = [p for p in self.inner.parameters() if p.requires_grad]
        linear = sum((p * g).sum() for p, g in zip(params, grads, strict=True))
        return linear - linear.detach() + mean_loss

    def close(self) -> nn.Module:
        """Remove Opacus' hooks; returns the plain module."""
        return self._gsm[0].to_standard_module()


ACCOUNTANTS = ("rdp", "prv")


def epsilon_spent(
    noise_multiplier: float,
    sample_rate: float,
    steps: int,
    delta: float,
    release_noise: float | tuple[float, ...] = 0.0,
    accountant: str = "rdp",
) -> float:
    """Epsilon of `steps` Poisson-subsampled Gaussian steps, composed with one full-data
    Gaussian release (sensitivity 1) per noise multiplier in `release_noise` (> 0; the
    popularity counts, the transition counts, the next-item values) when given.

    `accountant`: "rdp" (Opacus' Renyi-DP accountant, Mironov 2017) or "prv" (Opacus' privacy
    loss random variable accountant, Gopi et al. 2021: numerical composition, tighter; the
    reported value is its upper bound, estimate + 0.01)."""
    if accountant not in ACCOUNTANTS:
        raise ValueError(f"accountant must be one of {ACCOUNTANTS}, not {accountant!r}")
    releases = release_noise if isinstance(release_noise, tuple) else (release_noise,)
    releases = tuple(r for r in releases if r > 0)
    if (noise_multiplier <= 0 or steps == 0) and not releases:
        return math.inf if steps else 0.0
    if noise_multiplier <= 0 and steps:
        return math.inf
    from opacus.accountants import PRVAccountant, RDPAccountant

    acc = PRVAccountant() if accountant == "prv" else RDPAccountant()
    acc.history = [(noise_multiplier, sample_rate, steps)] if steps else []
    acc.history.extend((r, 1.0, 1) for r in releases)
    with np.errstate(divide="ignore", invalid="ignore"):  # PRV's log(1 - q) at q = 1
        return float(acc.get_epsilon(delta))


def _calibrate(eps_of: Any, target: float) -> float:
    """Smallest noise multiplier (to 0.1%) whose `eps_of(sigma)` is <= target."""
    lo, hi = 0.05, 1.0
    while eps_of(hi) > target:
        lo, hi = hi, hi * 2
        if hi > 1e5:
            raise ValueError("the privacy budget is too low")
    while hi - lo > 1e-3 * hi:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if eps_of(mid) <= target else (mid, hi)
    return hi


def _release_sigma(
    share: float, target_epsilon: float, delta: float, accountant: str = "rdp"
) -> float:
    """Noise multiplier of a one-shot Gaussian release (sensitivity 1) spending `share` of
    `target_epsilon` on its own."""
    if not 0 < float(share) < 1:
        raise ValueError("fit_private: a release share must be in (0, 1)")
    return _calibrate(
        lambda s: epsilon_spent(0.0, 1.0, 0, delta, s, accountant), share * target_epsilon
    )


def default_delta(n_users: int) -> float:
    """delta = 1 / (10 n): well below the chance 1/n of exposing one user outright."""
    return 1.0 / (10.0 * max(n_users, 1))


def fit_private(
    model: Any,
    data: InteractionData,
    target_epsilon: float,
    delta: float | None = None,
    max_grad_norm: float = 1.0,
    accountant: str = "rdp",
) -> PrivacyReport:
    """Train `model` (a `PrivateSeq`) with DP-SGD to spend at most `target_epsilon`.

    `accountant` ("rdp" or "prv", see `epsilon_spent`) calibrates the noise and reports the
    epsilon spent.

    ``target_epsilon = inf`` trains the same model and recipe without clipping or noise (the
    non-private reference). Training uses the model's own settings (epochs, batch_size, lr,
    max_seconds...) in the shared loop; no validation set is used.

    Returns
    -------
    PrivacyReport
        Also stored in the model's ``train_log_["privacy"]`` (and so in its saved state).
    """
    _opacus()
    if target_epsilon <= 0:
        raise ValueError("fit_private: target_epsilon must be positive (inf for no DP)")
    if not hasattr(model, "poisson"):
        raise ValueError("fit_private: the model must train one example per user (PrivateSeq)")
    from opacus.accountants.utils import get_noise_multiplier

    private = math.isfinite(target_epsilon)
    model.poisson = private
    torch.manual_seed(model.random_state)
    model.spec_ = model._spec(data)
    model.n_items_ = data.n_items
    model.module_ = model._build(model.spec_)
    model._prepare(data)
    n_users = len(model._examples)
    if n_users == 0:
        raise ValueError("fit_private: no user has two training interactions")
    delta = default_delta(n_users) if delta is None else float(delta)
    q = min(1.0, model.batch_size / n_users)
    planned = model.epochs * model.n_train_batches(model.batch_size)
    # optional one-shot releases (PrivateSeq popularity_init, transition_init,
    # item_transition_init): Gaussian mechanisms on per-user L2-normalised counts (sensitivity
    # 1), each spending its share of epsilon alone; DP-SGD is calibrated below so that the
    # composition spends the target
    pop_sigma = trans_sigma = item_sigma = 0.0
    if hasattr(model, "releases") and model.releases():
        if private:

            def sigma_of(enabled: Any, share: float) -> float:
                return _release_sigma(share, target_epsilon, delta, accountant) if enabled else 0.0

            pop_sigma = sigma_of(True, model.popularity_share)
            trans_sigma = sigma_of(getattr(model, "transition_init", 0), model.transition_share)
            item_sigma = sigma_of(
                getattr(model, "item_transition_init", 0), model.item_transition_share
            )
            # the releases compose to less than the sum of their shares; what they spend
            # together must leave room for DP-SGD
            together = epsilon_spent(
                0.0, 1.0, 0, delta, (pop_sigma, trans_sigma, item_sigma), accountant
            )
            if together >= 0.95 * target_epsilon:
                raise ValueError("fit_private: the release shares must leave room for DP-SGD")
        model.init_releases(data, pop_sigma, trans_sigma, model.random_state + 1, item_sigma)
    releases = (pop_sigma, trans_sigma, item_sigma)
    cfg = TrainingConfig(
        epochs=model.epochs,
        lr=model.lr,
        batch_size=model.batch_size,
        weight_decay=model.weight_decay,
        warmup=model.warmup,
        clip=None if private else model.clip,
        max_seconds=model.max_seconds,
        num_threads=model.num_threads,
        progress=model.progress,
        device=model.device,
        seed=model.random_state,
    )
    if not private:
        result = train(model, None, cfg)
        report = PrivacyReport(math.inf, 0.0, 0.0, 0.0, q, planned, n_users)
    else:
        if pop_sigma > 0:
            sigma = _calibrate(
                lambda s: epsilon_spent(s, q, planned, delta, releases, accountant),
                target_epsilon,
            )
        else:
            sigma = get_noise_multiplier(
                target_epsilon=target_epsilon,
                target_delta=delta,
                sample_rate=q,
                steps=planned,
                accountant=accountant,
            )
        inner = model.module_
        wrapper = DPLossModule(inner, sigma, max_grad_norm, q * n_users, model.random_state)
        model.module_ = wrapper
        try:
            result = train(model, None, cfg)
        finally:
            model.module_ = wrapper.close()
        eps = epsilon_spent(sigma, q, wrapper.steps, delta, releases, accountant)
        report = PrivacyReport(
            eps,
            delta,
            float(sigma),
            float(max_grad_norm),
            q,
            wrapper.steps,
            n_users,
            pop_sigma,
            trans_sigma,
            item_sigma,
            accountant=accountant,
        )
    model.train_log_ = {**result.as_dict(), "privacy": report.as_dict()}
    model._examples = None
    return report
