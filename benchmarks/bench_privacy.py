"""Privacy benchmarks: accuracy against epsilon (DP-SGD), federated vs centralised training,
and membership inference with and without DP.

Usage (2 cores, no GPU; run with `nice -n 10`):
    python benchmarks/bench_privacy.py dp --data ../shared/data/Beauty/Beauty.txt \
        --item-attributes ../shared/data/Beauty/Beauty_item2attributes.json \
        --item-repr attributes --id-dim 16 --dim 32 --popularity-init 0.3 --transition-init 3 \
        --transition-share 0.5 --epochs 10 --lr 1e-2 --epsilons inf,8,4,1 \
        --out benchmarks/results/privacy_dp_beauty_attr_pop_trans_e10.json
    python benchmarks/bench_privacy.py federated --data ../shared/data/Beauty/Beauty.txt \
        --out benchmarks/results/privacy_federated_beauty.json
    python benchmarks/bench_privacy.py mia --data ../shared/data/Beauty/Beauty.txt \
        --out benchmarks/results/privacy_mia_beauty.json

Protocol: leave-one-out (`shoprec.data.splits.leave_one_out`), full ranking over all items,
history masked, NDCG@10 on the test targets (`shoprec.models.ranking.evaluate_ndcg`); `dp`
also records validation NDCG@10, the figure settings are compared on. The
model is `PrivateSeq` (SASRec-style, one example per user per step); epsilon = inf is the
same model and recipe without clipping or noise. No validation-based early stopping for any
run (it would spend privacy), so every run trains the same fixed number of epochs.
`--epsilons 0` evaluates the untrained model: with `--item-repr attributes` that is what the
public catalog alone gives (no private data read, so epsilon 0).
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from shoprec.data.seqformat import read_recbole_inter, read_seq
from shoprec.data.splits import leave_one_out
from shoprec.models.private_seq import PrivateSeq
from shoprec.models.ranking import evaluate_ndcg

warnings.filterwarnings("ignore", message="Full backward hook")


def _read(path: str, item_attributes: str | None = None) -> Any:
    """Sequence text (`user item item ...`, optional item2attributes JSON) or a RecBole
    `.inter` file."""
    return read_recbole_inter(path) if path.endswith(".inter") else read_seq(path, item_attributes)


def _model(args: argparse.Namespace, **over: Any) -> PrivateSeq:
    params = dict(
        dim=args.dim,
        heads=2,
        dropout=args.dropout,
        max_len=args.max_len,
        item_repr=args.item_repr,
        id_dim=args.id_dim,
        prior_last=args.prior_last,
        popularity_init=args.popularity_init,
        popularity_share=args.popularity_share,
        transition_init=args.transition_init,
        transition_share=args.transition_share,
        transition_smooth=args.transition_smooth,
        item_transition_init=args.item_transition_init,
        item_transition_share=args.item_transition_share,
        item_transition_smooth=args.item_transition_smooth,
        cuts_per_user=args.cuts_per_user,
        learn_item_bias=not args.fixed_item_bias,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        weight_decay=args.weight_decay,
        warmup=args.warmup,
        random_state=args.seed,
        num_threads=1,
    )
    params.update(over)
    return PrivateSeq(**params)


def _write(path: str, payload: dict[str, Any]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2, default=str))


def run_dp(args: argparse.Namespace) -> None:
    from shoprec.privacy.dp import fit_private
    from shoprec.privacy.federated import init_model

    data = _read(args.data, args.item_attributes)
    split = leave_one_out(data)
    runs = []
    payload: dict[str, Any] = {
        "benchmark": "dp",
        "data": args.data,
        "settings": vars(args),
        "runs": runs,
        "machine": "2 cores, no GPU",
    }
    for eps_s in args.epsilons.split(","):
        eps = float(eps_s)
        model = _model(args)
        t0 = time.perf_counter()
        if eps == 0:  # no training: what the public catalog alone gives (no private data)
            report = None
            init_model(model, split.train)
        else:
            report = fit_private(
                model,
                split.train,
                eps,
                max_grad_norm=args.max_grad_norm,
                accountant=args.accountant,
            )
        seconds = time.perf_counter() - t0
        ndcg = evaluate_ndcg(model, split.test, 10)
        valid = evaluate_ndcg(model, split.valid, 10)  # design choices are read here
        runs.append(
            {
                "target_epsilon": eps_s,
                "valid_ndcg@10": valid,
                "privacy": report.as_dict() if report else {"epsilon": 0.0, "untrained": True},
                "test_ndcg@10": ndcg,
                "train_seconds": seconds,
                "train_log": getattr(model, "train_log_", None),
            }
        )
        ref = next((r["test_ndcg@10"] for r in runs if r["target_epsilon"] == "inf"), None)
        for r in runs:
            r["ratio_to_non_private"] = r["test_ndcg@10"] / ref if ref else None
        spent = f"spent={report.epsilon:.3f} sigma={report.noise_multiplier:.3f} " if report else ""
        print(
            f"eps={eps_s} {spent}steps={report.steps if report else 0} NDCG@10={ndcg:.4f} "
            f"valid={valid:.4f} "
            f"({seconds:.0f}s)",
            flush=True,
        )
        _write(args.out, payload)


def run_federated(args: argparse.Namespace) -> None:
    from shoprec.privacy.dp import fit_private
    from shoprec.privacy.federated import FederatedConfig, federated_train

    data = _read(args.data, args.item_attributes)
    split = leave_one_out(data)
    payload: dict[str, Any] = {
        "benchmark": "federated",
        "data": args.data,
        "settings": vars(args),
        "machine": "2 cores, no GPU",
    }
    t0 = time.perf_counter()
    epochs = args.epochs * args.local_epochs  # the same passes over the data as federated
    if args.central_from:  # the same centralised run, measured before
        payload["centralised"] = json.loads(Path(args.central_from).read_text())["centralised"]
        payload["centralised"]["from"] = args.central_from
    else:
        central = _model(args, epochs=epochs)
        fit_private(central, split.train, math.inf)  # same model, no DP, shared loop
        payload["centralised"] = {
            "test_ndcg@10": evaluate_ndcg(central, split.test, 10),
            "epochs": epochs,
            "seconds": time.perf_counter() - t0,
        }
    print("centralised", payload["centralised"], flush=True)
    _write(args.out, payload)
    cfg = FederatedConfig(
        n_clients=args.clients,
        rounds=args.epochs,
        local_epochs=args.local_epochs,
        fraction_fit=args.fraction_fit,
        seed=args.seed,
        dp_noise_multiplier=args.fed_noise,
        dp_clip=args.fed_clip,
        server_momentum=args.server_momentum,
        server_lr=args.server_lr,
        server_optimizer=args.server_optimizer,
        lr_schedule=args.lr_schedule,
    )
    t0 = time.perf_counter()
    fed, report = federated_train(lambda: _model(args), split.train, cfg)
    ndcg = evaluate_ndcg(fed, split.test, 10)
    payload["federated"] = {
        "test_ndcg@10": ndcg,
        "seconds": time.perf_counter() - t0,
        "report": report,
        "ratio_to_centralised": ndcg / payload["centralised"]["test_ndcg@10"],
    }
    print("federated", ndcg, payload["federated"]["ratio_to_centralised"], flush=True)
    _write(args.out, payload)


def run_mia(args: argparse.Namespace) -> None:
    from shoprec.privacy.audit import audit_membership

    data = _read(args.data, args.item_attributes)
    payload: dict[str, Any] = {
        "benchmark": "membership_inference",
        "data": args.data,
        "settings": vars(args),
        "machine": "2 cores, no GPU",
        "runs": [],
    }
    for eps_s in args.epsilons.split(","):
        t0 = time.perf_counter()
        res = audit_membership(
            lambda: _model(args),
            data,
            float(eps_s),
            n_users=args.mia_users,
            seed=args.seed,
            max_grad_norm=args.max_grad_norm,
            accountant=args.accountant,
        )
        res["target_epsilon"] = eps_s
        res["seconds"] = time.perf_counter() - t0
        payload["runs"].append(res)
        print(f"eps={eps_s} AUC={res['auc']:.4f} advantage={res['advantage']:.4f}", flush=True)
        _write(args.out, payload)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["dp", "federated", "mia"])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--epsilons", default="inf,8,4,1")
    ap.add_argument("--epochs", type=int, default=15, help="epochs; federated: rounds")
    ap.add_argument("--batch-size", type=int, default=2048)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--item-attributes", default=None, help="item2attributes JSON (seq data)")
    ap.add_argument("--item-repr", default="id", help="PrivateSeq item_repr: id | attributes")
    ap.add_argument("--id-dim", type=int, default=0, help="attributes: per-item correction rank")
    ap.add_argument("--prior-last", type=int, default=5, help="attributes: prior's last items")
    ap.add_argument(
        "--popularity-init", type=float, default=0.0, help="attributes: bias <- s log(1+pop)"
    )
    ap.add_argument("--popularity-share", type=float, default=0.25, help="of epsilon, DP")
    ap.add_argument(
        "--transition-init", type=float, default=0.0, help="attributes: transition prior gate"
    )
    ap.add_argument("--transition-share", type=float, default=0.25, help="of epsilon, DP")
    ap.add_argument("--transition-smooth", type=float, default=50.0, help="prior smoothing")
    ap.add_argument(
        "--item-transition-init",
        type=float,
        default=0.0,
        help="attributes: gate of the released attribute -> next-item prior",
    )
    ap.add_argument("--item-transition-share", type=float, default=0.25, help="of epsilon, DP")
    ap.add_argument("--item-transition-smooth", type=float, default=5.0, help="prior smoothing")
    ap.add_argument("--cuts-per-user", type=int, default=1, help="training cuts per user")
    ap.add_argument(
        "--fixed-item-bias",
        action="store_true",
        help="attributes: keep the item bias at its (released) popularity start, not trained",
    )
    ap.add_argument("--accountant", default="rdp", choices=["rdp", "prv"], help="dp: accountant")
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--warmup", type=float, default=0.02, help="fraction of steps warming up")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--max-len", type=int, default=20)
    ap.add_argument("--max-grad-norm", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clients", type=int, default=10, help="federated: number of clients")
    ap.add_argument("--local-epochs", type=int, default=1, help="federated: per round")
    ap.add_argument("--fraction-fit", type=float, default=1.0)
    ap.add_argument("--fed-noise", type=float, default=0.0, help="> 0: DP-FedAvg")
    ap.add_argument("--fed-clip", type=float, default=1.0)
    ap.add_argument("--server-momentum", type=float, default=0.0, help="> 0: FedAvgM")
    ap.add_argument("--server-lr", type=float, default=1.0, help="server step (FedAvgM, FedAdam)")
    ap.add_argument("--server-optimizer", default="avg", choices=["avg", "adam"])
    ap.add_argument("--lr-schedule", default="constant", help="clients' rate across rounds")
    ap.add_argument("--central-from", default=None, help="reuse this JSON's centralised run")
    ap.add_argument("--mia-users", type=int, default=4000, help="mia: members + non-members")
    args = ap.parse_args()
    torch.set_num_threads(1)
    {"dp": run_dp, "federated": run_federated, "mia": run_mia}[args.what](args)


if __name__ == "__main__":
    main()
