"""Federated training of `PrivateSeq` with Flower (FedAvg, optionally DP-FedAvg).

Each simulated client holds the events of its own users and trains on them locally with the
shared training loop; only model weights travel: the server sends the global weights, a
client returns its locally trained weights and a count, and Flower's strategy aggregates
them (`flwr.server.strategy.FedAvg`). With ``dp_noise_multiplier > 0`` the strategy is wrapped
in Flower's `DifferentialPrivacyServerSideFixedClipping` (DP-FedAvg, McMahan et al., ICLR
2018): each client's *update* is clipped to ``dp_clip`` and Gaussian noise of standard
deviation ``noise * clip / n_sampled`` is added to their uniform average; the epsilon of that
client-level guarantee comes from Opacus' RDP accountant (sampling rate = sampled clients /
clients, one step per round). When each client is one shopper it is a user-level guarantee.

What runs where. The clients are Flower clients (`to_flower`) driven in-process, one by one:
Flower's Ray-based simulation engine is too heavy for a 2-core machine shared with others, so
the round loop (sample clients, send weights, collect `FitRes`, aggregate with the strategy)
is written out here on Flower's strategy API. The same client class runs under a real Flower
deployment.

The catalog (item vocabulary) is shared with every client as public data. A model with
released statistics (`PrivateSeq` popularity and transition priors) gets them by federated
analytics before the first round: each client sums its users' parts, the server adds the
sums (`_federated_releases`); the priors then travel with the weights.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from shoprec.data.interactions import InteractionData
from shoprec.privacy.dp import epsilon_spent
from shoprec.training.loop import TrainingConfig, train
from shoprec.training.schedules import lr_factor


def _flwr() -> Any:
    try:
        import flwr
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "federated training needs Flower: pip install 'shoprec[federated]'"
        ) from exc
    return flwr


@dataclass(frozen=True)
class FederatedConfig:
    """Settings of a federated run (all have defaults)."""

    n_clients: int = 10  # users are split into this many clients (n_users: one per shopper)
    rounds: int = 20
    fraction_fit: float = 1.0  # clients sampled per round
    local_epochs: int = 1  # passes over its own users per round and client
    dp_noise_multiplier: float = 0.0  # > 0: DP-FedAvg (server-side fixed clipping)
    dp_clip: float = 1.0  # L2 bound on each client's update under DP-FedAvg
    dp_delta: float | None = None  # default 1 / (10 n_clients)
    lr_schedule: str = "constant"  # clients' learning rate across rounds: cosine|linear|constant
    server_momentum: float = 0.0  # > 0: FedAvgM (Hsu et al. 2019), server-side momentum
    server_lr: float = 1.0  # server step on the mean client update (FedAvgM's; FedAdam's eta)
    server_optimizer: str = "avg"  # "avg" (FedAvg / FedAvgM) | "adam" (FedAdam, Reddi 2021)
    seed: int = 0


def partition_users(
    data: InteractionData, n_clients: int, seed: int = 0, min_events: int = 2
) -> list[InteractionData]:
    """Deal the users with at least `min_events` events at random into `n_clients` disjoint,
    balanced groups (sizes differ by at most one); each group's events form one client's data
    (id maps and the catalog are shared). Users with fewer events belong to no client: they
    have nothing to train on."""
    counts = np.bincount(data.user_idx, minlength=data.n_users)
    eligible = np.flatnonzero(counts >= min_events)
    if not 1 <= n_clients <= max(len(eligible), 1):
        raise ValueError(f"partition_users: n_clients must be in [1, {len(eligible)}]")
    owner = np.full(data.n_users, -1)
    owner[np.random.default_rng(seed).permutation(eligible)] = np.arange(len(eligible)) % n_clients
    return [data.subset(owner[data.user_idx] == c) for c in range(n_clients)]


def get_weights(module: torch.nn.Module) -> list[np.ndarray]:
    """The module's state as a list of arrays (state_dict order)."""
    return [v.detach().cpu().numpy().copy() for v in module.state_dict().values()]


def set_weights(module: torch.nn.Module, weights: list[np.ndarray]) -> None:
    keys = list(module.state_dict().keys())
    if len(keys) != len(weights):
        raise ValueError("set_weights: wrong number of arrays for this module")
    module.load_state_dict({k: torch.as_tensor(w) for k, w in zip(keys, weights, strict=True)})


def init_model(model: Any, data: InteractionData) -> Any:
    """Build `model`'s module for `data`'s catalog without training it."""
    torch.manual_seed(model.random_state)
    model.spec_ = model._spec(data)
    model.n_items_ = data.n_items
    model.module_ = model._build(model.spec_)
    return model


class ShopClient:
    """A federated client: trains the global model on its own users' events.

    Parameters
    ----------
    make_model : callable
        Returns a fresh, unfitted model (a `PrivateSeq` with the shared settings).
    data : InteractionData
        This client's events; they never leave the client.
    seed : int
    """

    def __init__(self, make_model: Callable[[], Any], data: InteractionData, seed: int = 0):
        self.make_model = make_model
        self.data = data
        self.seed = seed

    def _model(self, weights: list[np.ndarray] | None) -> Any:
        model = init_model(self.make_model(), self.data)
        if weights is not None:
            set_weights(model.module_, weights)
        return model

    def get_parameters(self, config: dict[str, Any]) -> list[np.ndarray]:
        return get_weights(self._model(None).module_)

    def release_sums(self) -> dict[str, np.ndarray]:
        """This client's share of the model's released statistics (`PrivateSeq.release_sums`:
        sums over users), computed locally; only these sums leave the client."""
        return self._model(None).release_sums(self.data)

    def fit(
        self, parameters: list[np.ndarray], config: dict[str, Any]
    ) -> tuple[list[np.ndarray], int, dict[str, Any]]:
        model = self._model(parameters)
        model._prepare(self.data)
        n = len(model._examples)
        if n == 0:
            return parameters, 0, {"loss": math.nan}
        cfg = TrainingConfig(
            epochs=int(config.get("local_epochs", 1)),
            lr=model.lr * float(config.get("lr_factor", 1.0)),  # the server's schedule
            batch_size=model.batch_size,
            weight_decay=model.weight_decay,
            warmup=0.0,
            schedule="constant",
            clip=model.clip,
            seed=self.seed + 7919 * int(config.get("round", 0)),
            num_threads=model.num_threads,
        )
        result = train(model, None, cfg)
        loss = result.history[-1]["loss"] if result.history else math.nan
        return get_weights(model.module_), n, {"loss": float(loss)}


def to_flower(client: ShopClient) -> Any:
    """`client` as a Flower `Client` (a `NumPyClient` adapter): parameters arrive and leave
    serialised, exactly as they would over the network."""
    base = _flwr().client.NumPyClient

    class _Adapter(base):  # type: ignore[misc, valid-type]
        def get_parameters(self, config: dict[str, Any]) -> list[np.ndarray]:
            return client.get_parameters(config)

        def fit(self, parameters: list[np.ndarray], config: dict[str, Any]) -> Any:
            return client.fit(parameters, config)

    return _Adapter().to_client()


def _mean_loss(metrics: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    total = sum(n for n, _ in metrics)
    return {"loss": sum(n * float(m.get("loss", 0.0)) for n, m in metrics) / max(total, 1)}


def _federated_releases(model: Any, clients: list[ShopClient], dp: bool) -> list[str]:
    """Federated analytics for the model's released statistics (popularity, transitions):
    each client sums its own users' parts, the server adds the clients' sums (in a deployment
    under secure aggregation, so it sees only the total) and sets the priors exactly as
    centralised training would. Returns the names of the released sums."""
    if not (hasattr(model, "releases") and model.releases()):
        return []
    if dp:
        raise ValueError(
            "federated: DP-FedAvg does not cover released statistics; train without them "
            "(popularity_init, transition_init, item_transition_init = 0)"
        )
    total: dict[str, np.ndarray] = {}
    for client in clients:
        for name, part in client.release_sums().items():
            total[name] = total[name] + part if name in total else part
    model.set_releases(total, 0.0, 0.0, model.random_state + 1)
    return sorted(total)


def _rounds(
    cfg: FederatedConfig,
    clients: list[Any],
    strategy: Any,
    model: Any,
    global_w: list[np.ndarray],
    n_sampled: int,
    dp: bool,
    rng: np.random.Generator,
    on_round: Callable[[int, Any], None] | None,
) -> list[dict[str, Any]]:
    """The round loop: sample clients, send weights, aggregate with the strategy."""
    from flwr.common import FitIns, ndarrays_to_parameters, parameters_to_ndarrays

    log: list[dict[str, Any]] = []
    for rnd in range(1, cfg.rounds + 1):
        chosen = np.sort(rng.choice(cfg.n_clients, n_sampled, replace=False))
        results = []
        losses = []
        # a round's local training runs at the schedule's value at the round's midpoint
        factor = lr_factor((rnd - 0.5) / cfg.rounds, 0.0, cfg.lr_schedule)
        ins = FitIns(
            ndarrays_to_parameters(global_w),
            {"round": rnd, "local_epochs": cfg.local_epochs, "lr_factor": factor},
        )
        for c in chosen:
            res = clients[c].fit(ins)
            losses.append(float(res.metrics.get("loss", math.nan)))
            # under DP every client counts the same (the noise assumes a uniform mean)
            res.num_examples = 1 if dp else max(res.num_examples, 1)
            results.append((None, res))
        if dp:
            strategy.current_round_params = [w.copy() for w in global_w]
        params, _ = strategy.aggregate_fit(rnd, results, [])
        if params is not None:
            global_w = parameters_to_ndarrays(params)
        set_weights(model.module_, global_w)
        log.append(
            {
                "round": rnd,
                "clients": len(chosen),
                "mean_client_loss": float(np.nanmean(losses)) if losses else math.nan,
            }
        )
        if on_round is not None:
            on_round(rnd, model)
    return log


def federated_train(
    make_model: Callable[[], Any],
    data: InteractionData,
    cfg: FederatedConfig,
    on_round: Callable[[int, Any], None] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Train with FedAvg (DP-FedAvg when ``cfg.dp_noise_multiplier > 0``).

    Returns
    -------
    (model, report): the model holding the final global weights, and what happened
    (rounds, clients, bytes sent per round, privacy spent under DP-FedAvg).
    """
    flwr = _flwr()
    from flwr.common import ndarrays_to_parameters
    from flwr.server.strategy import (
        DifferentialPrivacyServerSideFixedClipping,
        FedAdam,
        FedAvg,
        FedAvgM,
    )

    if not 0 < cfg.fraction_fit <= 1:
        raise ValueError("fraction_fit must be in (0, 1]")
    if cfg.server_optimizer not in ("avg", "adam"):
        raise ValueError(f"server_optimizer must be 'avg' or 'adam', not {cfg.server_optimizer!r}")
    shards = partition_users(data, cfg.n_clients, cfg.seed)
    one_user_each = all(len(np.unique(s.user_idx)) == 1 for s in shards)
    shop_clients = [ShopClient(make_model, shard, cfg.seed + c) for c, shard in enumerate(shards)]
    clients = [to_flower(c) for c in shop_clients]
    model = init_model(make_model(), data)
    dp = cfg.dp_noise_multiplier > 0
    released = _federated_releases(model, shop_clients, dp)
    global_w = get_weights(model.module_)
    n_sampled = max(1, round(cfg.fraction_fit * cfg.n_clients))
    if cfg.server_optimizer == "adam":
        strategy: Any = FedAdam(
            fraction_fit=cfg.fraction_fit,
            fraction_evaluate=0.0,
            fit_metrics_aggregation_fn=_mean_loss,
            initial_parameters=ndarrays_to_parameters(global_w),
            eta=cfg.server_lr,
            eta_l=1.0,  # Flower's bookkeeping only: clients use the model's own lr
            tau=1e-3,
        )
    elif cfg.server_momentum > 0 or cfg.server_lr != 1.0:
        strategy = FedAvgM(
            fraction_fit=cfg.fraction_fit,
            fraction_evaluate=0.0,
            fit_metrics_aggregation_fn=_mean_loss,
            server_momentum=cfg.server_momentum,
            server_learning_rate=cfg.server_lr,
            initial_parameters=ndarrays_to_parameters(global_w),
        )
    else:
        strategy = FedAvg(
            fraction_fit=cfg.fraction_fit,
            fraction_evaluate=0.0,
            fit_metrics_aggregation_fn=_mean_loss,
        )
    if dp:
        strategy = DifferentialPrivacyServerSideFixedClipping(
            strategy, cfg.dp_noise_multiplier, cfg.dp_clip, n_sampled
        )
    rng = np.random.default_rng(cfg.seed)
    flwr_logger = logging.getLogger("flwr")
    level = flwr_logger.level
    flwr_logger.setLevel(logging.WARNING)  # Flower logs every aggregation at INFO
    try:
        log = _rounds(cfg, clients, strategy, model, global_w, n_sampled, dp, rng, on_round)
    finally:
        flwr_logger.setLevel(level)
    global_w = get_weights(model.module_)
    model.module_.eval()
    report: dict[str, Any] = {
        "config": asdict(cfg),
        "engine": f"flwr {flwr.__version__} strategy API, clients in-process",
        "bytes_per_client_per_round": int(sum(w.nbytes for w in global_w)) * 2,
        "rounds": log,
        "released_statistics": released,
        "dp": None,
    }
    if dp:
        delta = cfg.dp_delta if cfg.dp_delta is not None else 1.0 / (10.0 * cfg.n_clients)
        report["dp"] = {
            "unit": "user" if one_user_each else "client",
            "epsilon": epsilon_spent(
                cfg.dp_noise_multiplier, n_sampled / cfg.n_clients, cfg.rounds, delta
            ),
            "delta": delta,
            "noise_multiplier": cfg.dp_noise_multiplier,
            "clip": cfg.dp_clip,
        }
    model.train_log_ = {"federated": report}
    return model, report
