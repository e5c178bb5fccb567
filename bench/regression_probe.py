"""Which loss terms let the cross-domain regression recover game parameters? A short run at demo scale, as JSON.

    python -m bench.regression_probe NAME [--steps 3000] [--eval-every 500] [--lr 3e-4] [--device cuda] \
        [--target-root data/game-game-64-30k] [--batch-size 64] \
        [--set lambda_domain=0 --set parameter_prior_weight=0.05 ...] [--out bench/results/regression_probe]

The encoder, regressor and data are those of experiments/demo/main.yaml, read from it; the loss weights are
RegressionModule's defaults (the paper's) changed only by --set (any init arg or losses.ObjectiveSettings field:
lambda_*, l2_mode, ...). Adam at a constant lr trains E, D and R; every --eval-every steps one row goes to stdout
and OUT/NAME.json: the parameter RMSE on every held-out screenshot and synthetic photo (and on the photos that
of predicting 0, and that of the predictions scaled per parameter by the least-squares factor in [0, 1] fitted
on the held-out screenshots: post-hoc shrinkage of what the network cannot read), the training loss terms
averaged since the last row, and the per-parameter Pearson correlation of regressed and true photo parameters,
for the most visible quartile (bench/results/sensitivity.csv) and the ten most visible parameters. The photos
must be a synthetic set: real photos have no ground truth.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import yaml
from lightning.fabric.utilities import move_data_to_device
from lightning.pytorch import seed_everything
from torch.utils.data import DataLoader

from callbacks.shrinkage import shrinkage_factors
from datamodules import CrossDomainDataModule
from eval.verify import pearson, read_visibility
from game import parameters as P
from lightning_modules.regression import RegressionModule
from losses import ObjectiveSettings
from models.modes import evaluating

OBJECTIVE_FIELDS = {field.name for field in dataclasses.fields(ObjectiveSettings)}  # --set keys of eq. 12
DEMO_CONFIG = Path(__file__).resolve().parents[1] / "experiments" / "demo" / "main.yaml"


def setting(pair: str) -> tuple[str, float | bool | str | None]:
    """One --set KEY=VALUE: numbers become floats, true/false/null their Python values, the rest stays text."""
    key, equals, value = pair.partition("=")
    if not key or not equals:
        raise argparse.ArgumentTypeError(f"--set expects KEY=VALUE (e.g. lambda_domain=0), got {pair!r}")
    try:
        return key, float(value)
    except ValueError:
        return key, {"true": True, "false": False, "null": None}.get(value.lower(), value)


def build(args: argparse.Namespace) -> tuple[RegressionModule, CrossDomainDataModule]:
    """The demo's networks and data from its config, the probe's loss weights, the imitator and data roots."""
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    seed_everything(config["seed_everything"])
    model, data = config["model"]["init_args"], config["data"]["init_args"]
    settings = dict(args.set)
    objective = {key: settings.pop(key) for key in list(settings) if key in OBJECTIVE_FIELDS}
    module = RegressionModule(
        model["encoder"],
        model["regressor"],
        args.imitator or model["imitator_checkpoint"],
        objective=ObjectiveSettings(**objective),
        optimizer=functools.partial(torch.optim.Adam, lr=args.lr),
        **settings,
    )
    source = data["source"] | {"root": args.source_root or data["source"]["root"]}
    data |= {
        "target_root": args.target_root or data["target_root"],
        "source": source,
        "batch_size": args.batch_size or data["batch_size"],
        "num_workers": 0,
        "pin_memory": False,
        "persistent_workers": False,
    }  # 64 px images load fast in-process
    datamodule = CrossDomainDataModule(**data)
    # No Lightning Trainer: its samplers read the epoch from this stand-in, so every pass is a fresh shuffle.
    datamodule.trainer = SimpleNamespace(current_epoch=0, world_size=1, global_rank=0)
    datamodule.prepare_data()  # renders the demo sets if they are missing, as the demo would
    datamodule.setup("fit")
    return module.to(args.device), datamodule


@torch.no_grad()
def evaluate(module: RegressionModule, datamodule: CrossDomainDataModule, device: str) -> dict[str, tuple]:
    """(regressed, true) parameters of every held-out screenshot and photo."""
    # Each set on its own, not the paired val loader: that cycles its one fixed photo batch (16 photos of
    # 8 people at the demo's sizes) to the screenshots' length, too few people for a correlation.
    result = {}
    with evaluating(module):
        for domain, dataset in (("target", datamodule.val_dataset), ("source", datamodule.source_val_dataset)):
            pairs = []
            for batch in DataLoader(dataset, batch_size=64):
                batch = datamodule.on_after_batch_transfer(move_data_to_device(batch, device), 0)
                pairs.append((module(batch["image"]).float().cpu().numpy(), batch["parameters"].cpu().numpy()))
            result[domain] = tuple(map(np.concatenate, zip(*pairs)))
    return result


def row(step: int, seconds: float, terms: dict[str, float], held_out: dict, most_visible: np.ndarray | None) -> dict:
    """One line of the log: RMSE per domain, mean training terms, correlations on the photos."""
    rmse = {
        domain: float(np.sqrt(((predicted - truth) ** 2).mean())) for domain, (predicted, truth) in held_out.items()
    }
    result = {
        "step": step,
        "seconds": round(seconds, 1),
        "rmse_target": rmse["target"],
        "rmse_photo": rmse["source"],
        "rmse_photo_zero": float(np.sqrt((held_out["source"][1] ** 2).mean())),
        **terms,
    }
    predicted, truth = held_out["target"]
    scale = shrinkage_factors(*(torch.from_numpy(x) for x in ((predicted * truth).sum(0), (predicted**2).sum(0))))
    photo_predicted, photo_truth = held_out["source"]
    result["rmse_photo_shrunk"] = float(np.sqrt(((photo_predicted * scale.numpy() - photo_truth) ** 2).mean()))
    if most_visible is not None:  # None: read_visibility has warned that the table is missing
        correlation = pearson(*held_out["source"])
        result["corr_visible_quartile"] = float(correlation[most_visible[: len(most_visible) // 4]].mean())
        result["corr_top10"] = [round(float(c), 3) for c in correlation[most_visible[:10]]]
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}


def main(argv: list[str] | None = None) -> dict:
    """Train, evaluate every --eval-every steps, write OUT/NAME.json after each row; returns the log."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="the run's name: OUT/NAME.json")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--lr", type=float, default=3e-4, help="Adam's, constant (the paper's 3e-4 by default)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--set",
        type=setting,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a RegressionModule init arg, e.g. parameter_prior_weight=0.05 (repeatable)",
    )
    parser.add_argument("--imitator", help="imitator run or checkpoint (default: the demo config's)")
    parser.add_argument("--target-root", help="screenshot set (default: the demo config's)")
    parser.add_argument("--source-root", help="synthetic photo set (default: the demo config's)")
    parser.add_argument("--batch-size", type=int, help="screenshots per batch (default: the demo config's)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/regression_probe"))
    args = parser.parse_args(argv)

    module, datamodule = build(args)
    optimizer, visibility = module.configure_optimizers(), read_visibility()
    most_visible = np.argsort(visibility, kind="stable")[::-1] if visibility is not None else None
    settings = vars(args) | {
        "set": dict(args.set),
        "out": str(args.out),
        "imitator": str(module.imitator_file),
        "target_root": datamodule.hparams.target_root,
        "source_root": datamodule.source.root,
    }
    log = {
        "settings": settings,
        "rows": [],
        "top10_parameters": [P.names()[i] for i in most_visible[:10]] if most_visible is not None else [],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    train, sums, since, step, started = datamodule.train_dataloader(), {}, 0, 0, time.perf_counter()
    while step < args.steps:
        for batch, *_ in train:  # the CombinedLoader yields (batch, index, loader index)
            batch = datamodule.on_after_batch_transfer(move_data_to_device(batch, args.device), 0)
            total, terms, *_ = module.model_step(batch)
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
            step, since = step + 1, since + 1
            for name, value in terms.items():
                if not name.startswith("codebook/"):  # codebook usage statistics, not losses
                    sums[name] = sums.get(name, 0.0) + float(value)
            if step % args.eval_every == 0 or step == args.steps:
                terms = {name: value / since for name, value in sums.items()}
                line = row(
                    step, time.perf_counter() - started, terms, evaluate(module, datamodule, args.device), most_visible
                )
                print(args.name, json.dumps(line), flush=True)
                log["rows"].append(line)
                (args.out / f"{args.name}.json").write_text(json.dumps(log, indent=1))  # a killed run keeps its rows
                sums, since = {}, 0
            if step == args.steps:
                break
        datamodule.trainer.current_epoch += 1
    return log


if __name__ == "__main__":
    main()
