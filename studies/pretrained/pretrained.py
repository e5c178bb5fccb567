"""The shipped default model (issue 13 item 4): fit the frozen-face-feature reader, export its network alone, score it,
and write its model card. NOT in the paper: frozen real-face features + MLP head (models.readers.FaceFeatureReader,
experiments/features/).

fit() runs `python -m lightning_modules.cli fit` on experiments/features/base.yaml + identity.yaml + shipped.yaml
under a time budget;
export() writes the run's network as weights/default/model.pt (models.checkpoints.export_network: what
`load_network(path, "net")` and eval.descriptors.load_parameter_model read) with its metadata; score() runs the likeness
benchmark (`python -m bench.likeness`) on it as row `default`; model_card() writes the card from both.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
# The identity group alone: on engine v2 it closes more of the likeness gap than all three groups over three seeds
# (studies/feature_groups: 0.628 (0.612-0.645) vs 0.558-0.583); the landmark mesh adds 1404 noisy inputs. Read at
# 128 px by a wider head trained longer (shipped.yaml: 0.775 (0.758-0.793)).
CONFIGS = tuple(
    REPO / "experiments/features" / name for name in ("base.yaml", "identity.yaml", "shipped.yaml", "cached.yaml")
)
RUN_NAME = "pretrained-default"
GROUP_SOURCES = {
    "mesh": "MediaPipe's landmark net: the pose-free mesh",
    "identity": "dlib's face descriptor",
    "colour": "landmark-placed Lab region colours",
}
MAX_BYTES = 20 * 1024 * 1024  # the project's limit for a file under weights/
NOT_IN_PAPER = "not in the paper: frozen real-face features + MLP head"
TITLE = NOT_IN_PAPER[0].upper() + NOT_IN_PAPER[1:]  # as a sentence begins


def shown(path: Path) -> str:
    """`path` relative to the repository where it lies inside it (a card reads the same on every machine)."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def fit_command(runs: Path, budget_minutes: float, steps: int | None, settings: list[str]) -> list[str]:
    """The LightningCLI command of the fit: the configs, the time budget (and step cap), the run folder, `settings`
    ("KEY=VALUE", any LightningCLI setting) last so that they win."""
    seconds = round(budget_minutes * 60)
    max_time = f"00:{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"  # DD:HH:MM:SS
    command = [sys.executable, "-m", "lightning_modules.cli", "fit"]
    command += [arg for path in CONFIGS for arg in ("--config", str(path.relative_to(REPO)))]
    command += ["--trainer.max_time", max_time, "--run.name", RUN_NAME, "--run.root", str(runs)]
    if steps is not None:
        command += ["--trainer.max_steps", str(steps)]
    for setting in settings:
        key, _, value = setting.partition("=")
        command += [f"--{key}", value]
    return command


def fit(command: list[str], runs: Path) -> tuple[Path, float]:
    """Run the fit; (the new run's last.ckpt, wall-clock seconds of the whole command, data rendering included)."""
    from models.checkpoints import find_checkpoint

    start = time.monotonic()
    subprocess.run(command, check=True, cwd=REPO)
    return find_checkpoint(runs / RUN_NAME), time.monotonic() - start  # the newest version: this one


def git_commit() -> str:
    """The commit the code ran at, `+dirty` when the working tree had changes, or 'unknown' outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
        status = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit.stdout.strip() + ("+dirty" if status.stdout.strip() else "")


def data_summary(run_dir: Path) -> dict:
    """The run's data as its resolved config.yaml, the set's manifest.json and split.json record them."""
    import yaml

    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    data = config["data"]["init_args"]
    root = Path(data["target_root"])
    root = root if root.is_absolute() else REPO / root
    manifest = json.loads((root / "manifest.json").read_text())
    split = json.loads(Path(data.get("split_path") or root / "split.json").read_text())
    return {
        "set": str(data["target_root"]),
        "style": manifest.get("style"),
        "prior": manifest.get("prior"),
        "rows": manifest.get("count"),
        "size": manifest.get("size"),
        "render_seed": manifest.get("seed"),
        "renders_per_identity": manifest.get("renders_per_identity"),
        "train_rows": len(split["train"]),
        "val_rows": len(split["val"]),
        "split_seed": split["seed"],
        "val_fraction": split["val_fraction"],
        "image_size": data.get("image_size") or manifest.get("size"),
        "batch_size": data.get("batch_size"),
        "seed_everything": config.get("seed_everything"),
    }


def last_validation(run_dir: Path) -> dict | None:
    """The last logged validation (step, val/loss, val/rmse_ratio) of the run's metrics.csv, or None."""
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return None
    with open(path, newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("val/rmse_ratio")]
    if not rows:
        return None
    return {"step": int(rows[-1]["step"]) + 1, "val_rmse_ratio": float(rows[-1]["val/rmse_ratio"])}


def metadata(checkpoint: Path, command: str, fit_argv: list[str], seconds: float, budget_minutes: float) -> dict:
    """What the export records about itself: table version, image size, commit, data seeds and sizes, training."""
    from game import parameters as P
    from models.checkpoints import read_checkpoint

    run_dir = checkpoint.parent.parent
    saved = read_checkpoint(checkpoint, mmap=True)
    data = data_summary(run_dir)
    recorded = {v.get("parameter_table_version") for v in saved.values() if isinstance(v, dict)} - {None}
    P.check_same_table(checkpoint, ", ".join(sorted(recorded)), "this game", P.TABLE_VERSION)
    return {
        "kind": "likeness.default_model",
        "version": 1,
        "note": NOT_IN_PAPER,
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "parameter_table_version": P.TABLE_VERSION,
        "image_size": data["image_size"],
        "network": saved["hyper_parameters"]["net"]["class_path"],
        "features": saved["hyper_parameters"]["net"]["init_args"].get("features"),
        "commit": git_commit(),
        "command": command,
        "fit_command": " ".join([Path(fit_argv[0]).name, *fit_argv[1:]]),
        "run": shown(run_dir),
        "data": data,
        "training": {
            "budget_minutes": budget_minutes,
            "wall_seconds": round(seconds, 1),
            "global_step": int(saved.get("global_step", 0)),
            "epoch": int(saved.get("epoch", 0)),
            "torch": str(torch.__version__),
            "device": "cuda" if torch.cuda.is_available() else "cpu",
        },
        "held_out": last_validation(run_dir),
    }


def export(checkpoint: Path, out: Path, meta: dict) -> Path:
    """out/model.pt: the checkpoint's network alone with `meta`, refused over MAX_BYTES; out/model.json beside it."""
    from models.checkpoints import export_network, load_network

    data = export_network(load_network(checkpoint, "net"), meta)
    if len(data) > MAX_BYTES:
        raise ValueError(
            f"{out / 'model.pt'}: the export is {len(data) / 2**20:.1f} MB, over the {MAX_BYTES / 2**20:.0f} MB "
            "limit for weights/ (a smaller head: --set model.init_args.net.init_args.hidden=128)"
        )
    out.mkdir(parents=True, exist_ok=True)
    path = out / "model.pt"
    temporary = path.with_name(".model.pt.tmp")
    temporary.write_bytes(data)
    temporary.replace(path)
    (out / "model.json").write_text(json.dumps(meta, indent=1) + "\n")
    return path


def score(model: Path, out: Path, extra: list[str]) -> dict:
    """The likeness benchmark's report with the model as row `default` (out/likeness.json and .md)."""
    report = out / "likeness.json"
    command = [sys.executable, "-m", "bench.likeness", "--ckpt", f"default={model}", "--out", str(report), *extra]
    subprocess.run(command, check=True, cwd=REPO)
    return json.loads(report.read_text())


def model_card(meta: dict, model: Path, report: dict | None) -> str:
    """MODEL_CARD.md: what the model is, the command, commit, data seeds and sizes, training time, scores."""
    from eval.likeness_bench import markdown

    data, training, held_out = meta["data"], meta["training"], meta["held_out"]
    size = model.stat().st_size
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    lines = [
        "# The default model",
        "",
        f"**{TITLE}** ({meta['network']}, feature groups {meta['features']}): frozen features from networks "
        f"pretrained on real faces ({', '.join(GROUP_SOURCES[group] for group in meta['features'] or [])}) and a small "
        "MLP head trained on photo-style renders with known parameters. The paper's method "
        "(E -> R through an imitator) is experiments/main.yaml; this is the model `python -m eval.reconstruct` and "
        "`eval/verify.py` use when no --ckpt is given.",
        "",
        f"- File: `{model.name}`, {size / 2**20:.2f} MB ({size} bytes), sha256 `{digest}`; read with "
        '`models.checkpoints.load_network(path, "net")` or `eval.descriptors.load_parameter_model(path)`.',
        f"- Parameter table: `{meta['parameter_table_version']}` (a file of another table is refused when loaded).",
        f"- Input: template-aligned faces, resized to {meta['image_size']} px (the training size).",
        f"- Command: `{meta['command']}`",
        f"- Fit: `{meta['fit_command']}`",
        f"- Commit: `{meta['commit']}`; run folder `{meta['run']}`; made {meta['created']}.",
        f"- Data: `{data['set']}`: {data['rows']} {data['style']}-style renders at {data['size']} px "
        f"(prior {data['prior']}, render seed {data['render_seed']}, {data['renders_per_identity']} per identity); "
        f"split seed {data['split_seed']}: {data['train_rows']} training rows, {data['val_rows']} held out "
        f"({data['val_fraction']:g}); seed_everything {data['seed_everything']}; batch {data['batch_size']}.",
        f"- Training: {training['global_step']} steps (epoch index {training['epoch']}) in "
        f"{training['wall_seconds'] / 60:.1f} min wall clock (data rendering and the frozen nets' first pass "
        f"included), budget {training['budget_minutes']:g} min of fitting, torch {training['torch']} on "
        f"{training['device']}.",
    ]
    if held_out:
        lines.append(
            f"- Held-out rows at step {held_out['step']}: val/rmse_ratio {held_out['val_rmse_ratio']:.4f} (RMSE "
            "over the neutral face's on the training prior's held-out renders; one number, no interval: the "
            "intervals are the likeness benchmark's below)."
        )
    lines += ["", "## Scores", ""]
    if report is None:
        lines.append(
            "Not scored: made with --no-score. Score it with `python -m studies.pretrained --score` or "
            f"`python -m bench.likeness --ckpt default={model}`."
        )
    else:
        table = markdown(report).replace("# Likeness benchmark", "### Likeness benchmark (bench.likeness)", 1)
        lines.append(table.rstrip())
    return "\n".join(lines) + "\n"
