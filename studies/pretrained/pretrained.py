"""The shipped default model (issue 13): fit its members, export them as one network, score it, write its model card.
NOT in the paper: the mean of two readers trained on photo-style renders with known parameters (MEMBERS), frozen
real-face features + MLP head (models.readers.FaceFeatureReader) and a pixel reader (timm's ResNet-10-T from scratch,
models.readers.TimmReader): studies/photo_reader measured that they read different sliders and that their mean
beats each alone.

fit() runs `python -m lightning_modules.cli fit` on one member's configs under a time budget; export() writes the
members' networks as weights/default/model.pt (one member: its network; several: models.readers.MeanOfReaders of
them, each reading at its training size), in float16 where float32 would pass MAX_BYTES, in the layout that
`load_network(path, "net")` and eval.descriptors.load_parameter_model read, with its metadata; score() runs the
likeness benchmark (`python -m bench.likeness`) on it as row `default`; model_card() writes the card from both.
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
FEATURES = REPO / "experiments/features"
# member -> its configs in overlay order. face-features: dlib's descriptor alone (on engine v2 it closes more of the
# likeness gap than all three groups over three seeds, studies/feature_groups) read at 128 px by a wider head
# trained longer (shipped.yaml). pixels: ResNet-10-T (resnet10t.yaml: small enough for weights/) on 100,000 renders
# with expressions, glasses and occluders (extras_100k.yaml; on 20,000 it overfits, studies/photo_reader).
MEMBERS: dict[str, tuple[Path, ...]] = {
    "face-features": tuple(FEATURES / name for name in ("base.yaml", "identity.yaml", "shipped.yaml", "cached.yaml")),
    "pixels": tuple(FEATURES / name for name in ("base.yaml", "pixels.yaml", "extras_100k.yaml", "resnet10t.yaml")),
}
GROUP_SOURCES = {
    "mesh": "MediaPipe's landmark net: the pose-free mesh",
    "identity": "dlib's face descriptor",
    "colour": "landmark-placed Lab region colours",
}
MAX_BYTES = 20 * 1024 * 1024  # the project's limit for a file under weights/
NOT_IN_PAPER = "not in the paper: readers trained on photo-style renders with known parameters"
TITLE = NOT_IN_PAPER[0].upper() + NOT_IN_PAPER[1:]  # as a sentence begins


def shown(path: Path) -> str:
    """`path` relative to the repository where it lies inside it (a card reads the same on every machine)."""
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def run_name(member: str) -> str:
    return f"pretrained-{member}"


def member_settings(settings: list[str], member: str) -> list[str]:
    """The "[MEMBER:]KEY=VALUE" settings that apply to `member` (no MEMBER: every member), as "KEY=VALUE"."""
    chosen = []
    for setting in settings:
        prefix, colon, rest = setting.partition(":")
        if not colon or prefix not in MEMBERS:
            chosen.append(setting)
        elif prefix == member:
            chosen.append(rest)
    return chosen


def fit_command(member: str, runs: Path, budget_minutes: float, steps: int | None, settings: list[str]) -> list[str]:
    """The LightningCLI command of one member's fit: its configs, the time budget (and step cap), the run folder,
    and the settings that apply to it ("[MEMBER:]KEY=VALUE", any LightningCLI setting) last so that they win."""
    seconds = round(budget_minutes * 60)
    max_time = f"00:{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"  # DD:HH:MM:SS
    command = [sys.executable, "-m", "lightning_modules.cli", "fit"]
    command += [arg for path in MEMBERS[member] for arg in ("--config", str(path.relative_to(REPO)))]
    command += ["--trainer.max_time", max_time, "--run.name", run_name(member), "--run.root", str(runs)]
    if steps is not None:
        command += ["--trainer.max_steps", str(steps)]
    for setting in member_settings(settings, member):
        key, _, value = setting.partition("=")
        command += [f"--{key}", value]
    return command


def fit(command: list[str], runs: Path, member: str) -> tuple[Path, float]:
    """Run one member's fit; (the new run's last.ckpt, wall-clock seconds of the command, data rendering included)."""
    from models.checkpoints import find_checkpoint

    start = time.monotonic()
    subprocess.run(command, check=True, cwd=REPO)
    return find_checkpoint(runs / run_name(member)), time.monotonic() - start  # the newest version: this one


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


def member_metadata(member: str, checkpoint: Path, fit_argv: list[str], seconds: float, budget: float) -> dict:
    """What the export records about one member: its network, training size, fit command, run, data, training."""
    from game import parameters as P
    from models.checkpoints import read_checkpoint

    run_dir = checkpoint.parent.parent
    saved = read_checkpoint(checkpoint, mmap=True)
    data = data_summary(run_dir)
    recorded = {v.get("parameter_table_version") for v in saved.values() if isinstance(v, dict)} - {None}
    P.check_same_table(checkpoint, ", ".join(sorted(recorded)), "this game", P.TABLE_VERSION)
    spec = saved["hyper_parameters"]["net"]
    return {
        "name": member,
        "network": spec["class_path"],
        "features": spec["init_args"].get("features"),
        "backbone": spec["init_args"].get("model_name"),
        "image_size": data["image_size"],
        "checkpoint": shown(checkpoint),
        "fit_command": " ".join([Path(fit_argv[0]).name, *fit_argv[1:]]),
        "run": shown(run_dir),
        "data": data,
        "training": {
            "budget_minutes": budget,
            "wall_seconds": round(seconds, 1),
            "global_step": int(saved.get("global_step", 0)),
            "epoch": int(saved.get("epoch", 0)),
            "torch": str(torch.__version__),
            "device": "cuda" if torch.cuda.is_available() else "cpu",
        },
        "held_out": last_validation(run_dir),
    }


def metadata(command: str, members: list[dict]) -> dict:
    """What the export records about itself: table version, input size, commit, the command, its members."""
    from game import parameters as P

    sizes = {member["image_size"] for member in members}
    return {
        "kind": "likeness.default_model",
        "version": 2,
        "note": NOT_IN_PAPER,
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "parameter_table_version": P.TABLE_VERSION,
        # the size the model reads where its members share one; else None: each member resizes to its own
        "image_size": sizes.pop() if len(sizes) == 1 else None,
        "network": members[0]["network"] if len(members) == 1 else "models.readers.MeanOfReaders",
        "commit": git_commit(),
        "command": command,
        "members": members,
    }


def exported_network(members: list[dict]) -> torch.nn.Module:
    """The network to ship: one member's, or the mean of several (models.readers.MeanOfReaders, each member reading
    the picture at its training size)."""
    from models.checkpoints import load_network
    from models.readers import MeanOfReaders

    nets = [load_network(REPO / member["checkpoint"], "net") for member in members]
    if len(nets) == 1:
        return nets[0]
    return MeanOfReaders(nets, [member["image_size"] for member in members]).eval()


def export(net: torch.nn.Module, out: Path, meta: dict) -> tuple[Path, dict]:
    """(out/model.pt: `net` alone with `meta`, its float32 weights stored as float16 where float32 would pass
    MAX_BYTES, refused over MAX_BYTES even so; `meta` as written, with "stored_dtype"); out/model.json beside it."""
    from models.checkpoints import export_network

    meta = meta | {"stored_dtype": "float32"}
    data = export_network(net, meta)
    if len(data) > MAX_BYTES:
        meta["stored_dtype"] = "float16"
        data = export_network(net, meta, half=True)
    if len(data) > MAX_BYTES:
        raise ValueError(
            f"{out / 'model.pt'}: the export is {len(data) / 2**20:.1f} MB even in float16, over the "
            f"{MAX_BYTES / 2**20:.0f} MB limit for weights/ (smaller members: a narrower head, a smaller backbone)"
        )
    out.mkdir(parents=True, exist_ok=True)
    path = out / "model.pt"
    temporary = path.with_name(".model.pt.tmp")
    temporary.write_bytes(data)
    temporary.replace(path)
    (out / "model.json").write_text(json.dumps(meta, indent=1) + "\n")
    return path, meta


def score(model: Path, out: Path, extra: list[str]) -> dict:
    """The likeness benchmark's report with the model as row `default` (out/likeness.json and .md)."""
    report = out / "likeness.json"
    command = [sys.executable, "-m", "bench.likeness", "--ckpt", f"default={model}", "--out", str(report), *extra]
    subprocess.run(command, check=True, cwd=REPO)
    return json.loads(report.read_text())


def describe(member: dict) -> str:
    """One line of prose on what a member is."""
    if member["network"].endswith("FaceFeatureReader"):
        sources = ", ".join(GROUP_SOURCES.get(group, group) for group in member["features"] or [])
        return (
            f"frozen features of networks pretrained on real faces ({sources}), standardised, and an MLP head "
            "trained on them (models.readers.FaceFeatureReader)"
        )
    if member["network"].endswith("TimmReader"):
        return (
            f"timm's {member['backbone']} trained from scratch on the aligned picture's pixels "
            "(models.readers.TimmReader)"
        )
    return member["network"]


def member_lines(member: dict) -> list[str]:
    """The card's section on one member: what it is, its fit command, run, data and training."""
    data, training, held_out = member["data"], member["training"], member["held_out"]
    lines = [
        f"### Member `{member['name']}`",
        "",
        f"- What: {describe(member)}; reads the face resized to {member['image_size']} px (its training size).",
        f"- Fit: `{member['fit_command']}`",
        f"- Run folder `{member['run']}`.",
        f"- Data: `{data['set']}`: {data['rows']} {data['style']}-style renders at {data['size']} px "
        f"(prior {data['prior']}, render seed {data['render_seed']}, {data['renders_per_identity']} per identity); "
        f"split seed {data['split_seed']}: {data['train_rows']} training rows, {data['val_rows']} held out "
        f"({data['val_fraction']:g}); seed_everything {data['seed_everything']}; batch {data['batch_size']}.",
        f"- Training: {training['global_step']} steps (epoch index {training['epoch']}) in "
        f"{training['wall_seconds'] / 60:.1f} min wall clock (data rendering and frozen nets included), budget "
        f"{training['budget_minutes']:g} min of fitting, torch {training['torch']} on {training['device']}.",
    ]
    if held_out:
        lines.append(
            f"- Held-out rows at step {held_out['step']}: val/rmse_ratio {held_out['val_rmse_ratio']:.4f} (RMSE "
            "over the neutral face's on the training prior's held-out renders; one number, no interval: the "
            "intervals are the likeness benchmark's below)."
        )
    return [*lines, ""]


def model_card(meta: dict, model: Path, report: dict | None) -> str:
    """MODEL_CARD.md: what the model is, the command, commit, each member's data seeds, sizes and time, scores."""
    from eval.likeness_bench import markdown

    members = meta["members"]
    size = model.stat().st_size
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    if len(members) == 1:
        what = f"one reader, `{members[0]['name']}` (below)."
    else:
        names = ", ".join(f"`{member['name']}`" for member in members)
        what = (
            f"the mean of {len(members)} readers' parameters ({names}; "
            "models.readers.MeanOfReaders, nothing fitted on top), each trained alone (below): they read different "
            "sliders, and the mean beats each (studies/photo_reader)."
        )
    size_line = (
        f"resized to {meta['image_size']} px (the training size)"
        if meta["image_size"]
        else "any size; each member resizes it to its own training size"
    )
    lines = [
        "# The default model",
        "",
        f"**{TITLE}**: {what} The paper's method (E -> R through an imitator) is experiments/main.yaml; this is the "
        "model `python -m eval.reconstruct`, `eval/verify.py` and the app use when no --ckpt is given.",
        "",
        f"- File: `{model.name}`, {size / 2**20:.2f} MB ({size} bytes, weights stored as "
        f"{meta.get('stored_dtype', 'float32')}, computed in float32), sha256 `{digest}`; read with "
        '`models.checkpoints.load_network(path, "net")` or `eval.descriptors.load_parameter_model(path)`.',
        f"- Parameter table: `{meta['parameter_table_version']}` (a file of another table is refused when loaded).",
        f"- Input: template-aligned faces, {size_line}.",
        f"- Command: `{meta['command']}`",
        f"- Commit: `{meta['commit']}`; made {meta['created']}.",
        "",
        "## Members",
        "",
    ]
    for member in members:
        lines += member_lines(member)
    lines += ["## Scores", ""]
    if report is None:
        lines.append(
            "Not scored: made with --no-score. Score it with `python -m studies.pretrained --score` or "
            f"`python -m bench.likeness --ckpt default={model}`."
        )
    else:
        table = markdown(report).replace("# Likeness benchmark", "### Likeness benchmark (bench.likeness)", 1)
        lines.append(table.rstrip())
    return "\n".join(lines) + "\n"
