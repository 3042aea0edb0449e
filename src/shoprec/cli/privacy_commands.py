"""Privacy commands: forget-user, purge-expired, rekey-users, train-private, train-federated,
audit-privacy.

Settings come from the ``[privacy]`` section of ``--config`` (keys file, PII policy,
retention, erasure log) and ``[store]`` (store URLs); flags override them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from shoprec.cli.app import app

console = Console(stderr=True)
out = Console()

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML configuration file")]
JsonOpt = Annotated[Path | None, typer.Option("--json", help="Also write the result as JSON")]


def _settings(config: Path | None) -> tuple[Any, Any]:
    from shoprec.config import load_config, section
    from shoprec.data.pseudonymize import PrivacyConfig

    cfg = load_config(config)
    return cfg, section(cfg, "privacy", PrivacyConfig)


def _table(title: str, rows: dict[str, Any]) -> Table:
    t = Table(title=title)
    t.add_column("field")
    t.add_column("value")
    for k, v in rows.items():
        t.add_row(str(k), f"{v:.4f}" if isinstance(v, float) else str(v))
    return t


def _write_json(path: Path | None, payload: Any) -> None:
    if path is not None:
        path.write_text(json.dumps(payload, indent=2, default=str))


def _epsilon(text: str) -> float:
    return math.inf if text.strip().lower() in ("inf", "none", "off") else float(text)


@app.command("forget-user")
def forget_user_cmd(
    user_id: Annotated[str, typer.Argument(help="The shop's user id (or --pseudonym: stored id)")],
    config: ConfigOpt = None,
    store: Annotated[str | None, typer.Option(help="Store URL (default: [store] url)")] = None,
    online: Annotated[str | None, typer.Option(help="Online state URL")] = None,
    keys_file: Annotated[str | None, typer.Option(help="Pseudonym key file")] = None,
    pseudonym: Annotated[bool, typer.Option(help="USER_ID is already the stored id")] = False,
    erasure_log: Annotated[str | None, typer.Option(help="Audit log / erasure ledger")] = None,
    artifacts: Annotated[
        Path | None, typer.Option(help="Artifact root: versions holding the user are marked")
    ] = None,
    json_out: JsonOpt = None,
) -> None:
    """Erase one shopper: events, profile, online state; audit record; mark artifacts."""
    from shoprec.data.pseudonymize import KeyRing, Pseudonymizer
    from shoprec.storage import open_online_state, open_store
    from shoprec.storage.erasure import ErasureError, ErasureLog, forget_user

    cfg, privacy = _settings(config)
    keys = keys_file if keys_file is not None else privacy.keys_file
    stored = user_id
    if not pseudonym:
        stored = Pseudonymizer(KeyRing.from_file(keys) if keys else None).user_id(user_id)
    log_path = erasure_log if erasure_log is not None else privacy.erasure_log
    folders = []
    if artifacts is not None and artifacts.is_dir():
        folders = [p for p in artifacts.iterdir() if p.is_dir() and not p.name.startswith(".")]
    with open_store(store or cfg.store.url) as st:
        online_state = open_online_state(online or cfg.store.online_url)
        try:
            record = forget_user(
                stored, st, online_state, (), ErasureLog(log_path) if log_path else None, folders
            )
        except ErasureError as exc:
            console.print(f"[red]erasure incomplete:[/red] {exc}")
            record = exc.record
        finally:
            online_state.close()
    rows = {
        "erasure_id": record.erasure_id,
        "pseudonym": record.pseudonym,
        **{f"removed.{k}": v for k, v in record.removed.items()},
        "artifacts_marked": len(record.artifacts_marked),
        "audit_log": log_path or "(none)",
    }
    out.print(_table("Erasure", rows))
    _write_json(json_out, record.to_dict())
    if not record.complete:
        raise typer.Exit(1)


@app.command("purge-expired")
def purge_expired_cmd(
    config: ConfigOpt = None,
    store: Annotated[str | None, typer.Option(help="Store URL")] = None,
    retention_days: Annotated[float | None, typer.Option(help="Keep this many days")] = None,
    erasure_log: Annotated[str | None, typer.Option(help="Audit log")] = None,
) -> None:
    """Retention: delete events older than the retention period."""
    from shoprec.storage import open_store
    from shoprec.storage.erasure import ErasureLog, purge_expired

    cfg, privacy = _settings(config)
    days = retention_days if retention_days is not None else privacy.retention_days
    log_path = erasure_log if erasure_log is not None else privacy.erasure_log
    with open_store(store or cfg.store.url) as st:
        n = purge_expired(st, days, audit_log=ErasureLog(log_path) if log_path else None)
    out.print(f"purged {n} events older than {days:g} days")


@app.command("rekey-users")
def rekey_users_cmd(
    config: ConfigOpt = None,
    store: Annotated[str | None, typer.Option(help="Store URL")] = None,
    keys_file: Annotated[str | None, typer.Option(help="Key file whose last key is new")] = None,
) -> None:
    """After appending a key to the key file: move every stored user id onto it."""
    from shoprec.data.pseudonymize import KeyRing
    from shoprec.privacy.rotation import rekey_store
    from shoprec.storage import open_store

    cfg, privacy = _settings(config)
    keys = keys_file if keys_file is not None else privacy.keys_file
    if not keys:
        console.print("[red]error:[/red] no key file (--keys-file or [privacy] keys_file)")
        raise typer.Exit(2)
    with open_store(store or cfg.store.url) as st:
        moved = rekey_store(st, KeyRing.from_file(keys))
    out.print(_table("Re-keyed", moved))


def _data_split(data: Path, fmt: str | None, item_attributes: Path | None = None) -> Any:
    from shoprec.data.splits import leave_one_out
    from shoprec.evaluation.datasets import load_dataset

    return leave_one_out(load_dataset(data, fmt, item_attributes))


AttrsOpt = Annotated[
    Path | None,
    typer.Option("--item-attributes", help="item2attributes JSON (public catalog attributes)"),
]
ItemReprOpt = Annotated[
    str,
    typer.Option(
        help="'attributes': item vectors from the catalog's attributes (DP-friendly; needs "
        "attributes), 'id': per-item tables"
    ),
]
IdDimOpt = Annotated[int, typer.Option(help="attributes: rank of the per-item correction")]
TransitionInitOpt = Annotated[
    float,
    typer.Option(
        help="attributes: gate of the released attribute-transition prior (also releases "
        "popularity); 0 off"
    ),
]
TransitionShareOpt = Annotated[
    float, typer.Option(help="share of epsilon spent on the transition release")
]
TransitionSmoothOpt = Annotated[
    float, typer.Option(help="transition prior: smoothing added to attribute popularity")
]
ItemTransitionInitOpt = Annotated[
    float,
    typer.Option(
        help="attributes: gate of the released attribute -> next-item prior (also releases "
        "popularity); 0 off"
    ),
]
ItemTransitionShareOpt = Annotated[
    float, typer.Option(help="share of epsilon spent on the attribute -> next-item release")
]
FixedItemBiasOpt = Annotated[
    bool, typer.Option(help="attributes: keep the item bias at its released start")
]
AccountantOpt = Annotated[str, typer.Option(help="privacy accountant: 'prv' (tighter) or 'rdp'")]


def _private_model(**params: Any) -> Any:
    """The CLI's PrivateSeq: one thread, the last 20 items, no dropout, unless overridden."""
    from shoprec.models.private_seq import PrivateSeq

    settings = {"num_threads": 1, "max_len": 20, "dropout": 0.0}
    settings.update({k: v for k, v in params.items() if v is not None})
    return PrivateSeq(**settings)


@app.command("train-private")
def train_private_cmd(
    data: Annotated[Path, typer.Option(help="Dataset file (seq, RecBole .inter, ...)")],
    out_dir: Annotated[Path, typer.Option("--out", help="Artifact root to write")],
    epsilon: Annotated[str, typer.Option(help="Target epsilon, or 'inf' for no DP")] = "8",
    delta: Annotated[float | None, typer.Option(help="Default 1 / (10 n_users)")] = None,
    max_grad_norm: Annotated[float, typer.Option(help="Per-user clipping bound")] = 1.0,
    fmt: Annotated[str | None, typer.Option("--format")] = None,
    epochs: int = 20,
    batch_size: int = 2048,
    lr: float = 5e-3,
    dim: int = 64,
    max_len: int = 20,
    item_attributes: AttrsOpt = None,
    item_repr: ItemReprOpt = "id",
    id_dim: IdDimOpt = 0,
    popularity_init: Annotated[
        float,
        typer.Option(help="attributes: start the item bias at s log(1 + DP popularity); 0 off"),
    ] = 0.0,
    popularity_share: Annotated[
        float, typer.Option(help="share of epsilon spent on the popularity release")
    ] = 0.25,
    transition_init: TransitionInitOpt = 3.0,
    transition_share: TransitionShareOpt = 0.5,
    transition_smooth: TransitionSmoothOpt = 50.0,
    item_transition_init: ItemTransitionInitOpt = 60.0,
    item_transition_share: ItemTransitionShareOpt = 0.5,
    fixed_item_bias: FixedItemBiasOpt = False,
    accountant: AccountantOpt = "prv",
    cuts_per_user: Annotated[
        int, typer.Option(help="training cuts of each user's sequence per step (one record)")
    ] = 1,
    json_out: JsonOpt = None,
) -> None:
    """DP-SGD training of PrivateSeq (per-user guarantee); (epsilon, delta) in the artifact."""
    from shoprec.models.ranking import evaluate_ndcg
    from shoprec.privacy.dp import fit_private
    from shoprec.storage.artifacts import write_artifact

    split = _data_split(data, fmt, item_attributes)
    model = _private_model(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        dim=dim,
        max_len=max_len,
        item_repr=item_repr,
        id_dim=id_dim,
        popularity_init=popularity_init,
        popularity_share=popularity_share,
        transition_init=transition_init,
        transition_share=transition_share,
        transition_smooth=transition_smooth,
        item_transition_init=item_transition_init,
        item_transition_share=item_transition_share,
        learn_item_bias=not fixed_item_bias,
        cuts_per_user=cuts_per_user,
        progress=True,
    )
    report = fit_private(
        model, split.train, _epsilon(epsilon), delta, max_grad_norm, accountant=accountant
    )
    ndcg = evaluate_ndcg(model, split.test, 10)
    path = write_artifact(
        out_dir,
        lambda tmp: model.save(tmp / "model"),
        {
            "models": {"private_seq": model.get_params()},
            "fingerprint": split.train.fingerprint(),
            "metrics": {"test_ndcg@10": ndcg, "protocol": "leave_one_out"},
            "privacy": report.as_dict(),
        },
    )
    rows = {"artifact": str(path), "test NDCG@10": ndcg, **report.as_dict()}
    out.print(_table("Private training", rows))
    _write_json(json_out, rows)


@app.command("train-federated")
def train_federated_cmd(
    data: Annotated[Path, typer.Option(help="Dataset file")],
    clients: int = 10,
    rounds: int = 20,
    local_epochs: int = 1,
    fraction_fit: float = 1.0,
    dp_noise: Annotated[float, typer.Option(help="> 0: DP-FedAvg noise multiplier")] = 0.0,
    dp_clip: Annotated[float, typer.Option(help="DP-FedAvg update norm bound")] = 1.0,
    fmt: Annotated[str | None, typer.Option("--format")] = None,
    batch_size: int = 32,
    lr: float = 2e-3,
    item_attributes: AttrsOpt = None,
    item_repr: ItemReprOpt = "id",
    id_dim: IdDimOpt = 0,
    popularity_init: Annotated[
        float,
        typer.Option(help="attributes: item bias from popularity summed over clients; 0 off"),
    ] = 0.0,
    transition_init: TransitionInitOpt = 0.0,
    item_transition_init: ItemTransitionInitOpt = 0.0,
    fixed_item_bias: FixedItemBiasOpt = False,
    json_out: JsonOpt = None,
) -> None:
    """FedAvg (Flower strategies) over simulated clients that keep their own events.

    With released statistics (popularity, transitions) each client sums its own users'
    parts and the server adds them (federated analytics) before the first round."""
    from shoprec.models.ranking import evaluate_ndcg
    from shoprec.privacy.federated import FederatedConfig, federated_train

    split = _data_split(data, fmt, item_attributes)
    cfg = FederatedConfig(
        n_clients=clients,
        rounds=rounds,
        local_epochs=local_epochs,
        fraction_fit=fraction_fit,
        dp_noise_multiplier=dp_noise,
        dp_clip=dp_clip,
    )
    model, report = federated_train(
        lambda: _private_model(
            batch_size=batch_size,
            lr=lr,
            item_repr=item_repr,
            id_dim=id_dim,
            popularity_init=popularity_init,
            transition_init=transition_init,
            item_transition_init=item_transition_init,
            learn_item_bias=not fixed_item_bias,
        ),
        split.train,
        cfg,
    )
    rows = {
        "test NDCG@10": evaluate_ndcg(model, split.test, 10),
        "clients": clients,
        "rounds": rounds,
        "engine": report["engine"],
    }
    if report["dp"]:
        rows.update({f"dp.{k}": v for k, v in report["dp"].items()})
    out.print(_table("Federated training", rows))
    _write_json(json_out, {**rows, "report": report})


@app.command("audit-privacy")
def audit_privacy_cmd(
    data: Annotated[Path, typer.Option(help="Dataset file")],
    epsilons: Annotated[str, typer.Option(help="Comma-separated; 'inf' = no DP")] = "inf,8",
    users: Annotated[int | None, typer.Option(help="Members + non-members (default all)")] = None,
    fmt: Annotated[str | None, typer.Option("--format")] = None,
    epochs: int = 60,
    batch_size: int = 64,
    lr: float = 5e-3,
    item_attributes: AttrsOpt = None,
    item_repr: ItemReprOpt = "id",
    id_dim: IdDimOpt = 0,
    popularity_init: Annotated[
        float, typer.Option(help="attributes: item bias from DP popularity (see train-private)")
    ] = 0.0,
    transition_init: TransitionInitOpt = 0.0,
    transition_share: TransitionShareOpt = 0.5,
    item_transition_init: ItemTransitionInitOpt = 0.0,
    item_transition_share: ItemTransitionShareOpt = 0.5,
    fixed_item_bias: FixedItemBiasOpt = False,
    accountant: AccountantOpt = "prv",
    json_out: JsonOpt = None,
) -> None:
    """Membership inference (loss-threshold attack) against models trained with/without DP."""
    from shoprec.evaluation.datasets import load_dataset
    from shoprec.privacy.audit import audit_membership

    dataset = load_dataset(data, fmt, item_attributes)
    table = Table(title="Membership inference (loss threshold)")
    for col in ("epsilon", "spent", "attack AUC", "advantage", "members", "non-members"):
        table.add_column(col)
    results = []
    for e in epsilons.split(","):
        res = audit_membership(
            lambda: _private_model(
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                item_repr=item_repr,
                id_dim=id_dim,
                popularity_init=popularity_init,
                transition_init=transition_init,
                transition_share=transition_share,
                item_transition_init=item_transition_init,
                item_transition_share=item_transition_share,
                learn_item_bias=not fixed_item_bias,
            ),
            dataset,
            _epsilon(e),
            n_users=users,
            accountant=accountant,
        )
        results.append({"target_epsilon": e, **res})
        table.add_row(
            e,
            str(res["privacy"]["epsilon"])[:6],
            f"{res['auc']:.4f}",
            f"{res['advantage']:.4f}",
            str(res["members"]),
            str(res["non_members"]),
        )
    out.print(table)
    _write_json(json_out, results)
