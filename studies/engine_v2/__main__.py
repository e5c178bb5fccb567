"""`python -m studies.engine_v2 --reference DIR [--faces N] [--people N]`: the face detector's hit rate and the
likeness benchmark's truth-minus-neutral gap, this engine against a reference engine (DIR holds its game/, e.g.
main's: `mkdir -p /tmp/engine-main && git archive main game | tar -x -C /tmp/engine-main`), with 95% bootstrap
intervals over people. Writes studies/engine_v2/results/engine_v2.json and the table in its README."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).with_name("results") / "engine_v2.json"
README = Path(__file__).with_name("README.md")
STYLES, PRIORS = ("game", "photo"), ("uniform", "realistic")


def _measure_here(kind: str, count: int, out: Path) -> None:
    """Runs inside the engine's interpreter (--only): one measurement, as JSON."""
    from studies.engine_v2.measure import detector_hits, likeness_cosines

    if kind == "detector":
        result = {f"{style}/{prior}": detector_hits(style, prior, count) for style in STYLES for prior in PRIORS}
    else:
        with tempfile.TemporaryDirectory() as work:
            result = likeness_cosines(count, Path(work))
    from game.engine import ENGINE_VERSION

    out.write_text(json.dumps({"engine_version": ENGINE_VERSION, **result}))


def _run(engine: Path, kind: str, count: int) -> dict:
    """One measurement in a fresh interpreter whose `import game` finds `engine`'s game/."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        subprocess.run(
            [sys.executable, "-m", "studies.engine_v2", "--only", kind, str(count), str(out)],
            cwd=engine,  # `python -m` puts the working directory first on sys.path: its game/ wins
            env=env,
            check=True,
        )
        return json.loads(out.read_text())


def _interval(statistic, *samples, resamples: int = 2000) -> list[float]:
    """95% percentile bootstrap of statistic(*samples), each sample resampled over its own people (seeded)."""
    rng = np.random.default_rng(0)
    draws = [np.asarray(s)[rng.integers(0, len(s), (resamples, len(s)))] for s in samples]
    low, high = np.percentile(statistic(*draws), [2.5, 97.5])
    return [float(low), float(high)]


def wilson(hits: int, count: int, z: float = 1.96) -> list[float]:
    """95% Wilson score interval of a rate (sound at 0 and 1, where a bootstrap collapses to a point)."""
    p = hits / count
    centre = (p + z * z / (2 * count)) / (1 + z * z / count)
    half = z * np.sqrt(p * (1 - p) / count + z * z / (4 * count * count)) / (1 + z * z / count)
    return [float(centre - half), float(centre + half)]


def newcombe(a: np.ndarray, b: np.ndarray) -> list[float]:
    """95% interval of rate(a) - rate(b) from the two Wilson intervals (Newcombe's hybrid score method)."""
    p1, p2 = a.mean(), b.mean()
    (l1, u1), (l2, u2) = wilson(int(a.sum()), len(a)), wilson(int(b.sum()), len(b))
    d = p1 - p2
    return [float(d - np.hypot(p1 - l1, u2 - p2)), float(d + np.hypot(u1 - p1, p2 - l2))]


def summarise(new: dict, old: dict) -> dict:
    """Rates, gaps and new-minus-old differences with intervals (people are independent between engines)."""
    rate = lambda h: np.mean(h, -1)  # noqa: E731
    out = {"detector": {}, "likeness": {}}
    for key in new["detector"]:
        if key == "engine_version":
            continue
        a, b = np.array(new["detector"][key]["hits"]), np.array(old["detector"][key]["hits"])
        sa, sb = np.array(new["detector"][key]["scores"]), np.array(old["detector"][key]["scores"])
        out["detector"][key] = {
            "people": len(a),
            "new": float(a.mean()),
            "new_interval": wilson(int(a.sum()), len(a)),
            "old": float(b.mean()),
            "old_interval": wilson(int(b.sum()), len(b)),
            "new_minus_old": float(a.mean() - b.mean()),
            "new_minus_old_interval": newcombe(a, b),
            "new_score": float(sa.mean()),
            "new_score_interval": _interval(rate, sa),
            "old_score": float(sb.mean()),
            "old_score_interval": _interval(rate, sb),
        }
    gaps = {}
    for name, run in (("new", new["likeness"]), ("old", old["likeness"])):
        per_person = np.array(run["truth"]) - np.array(run["neutral"])
        gaps[name] = per_person
        out["likeness"][name] = {
            "people": len(per_person),
            "truth": float(np.mean(run["truth"])),
            "truth_interval": _interval(rate, np.array(run["truth"])),
            "neutral": float(np.mean(run["neutral"])),
            "neutral_interval": _interval(rate, np.array(run["neutral"])),
            "gap": float(per_person.mean()),
            "gap_interval": _interval(rate, per_person),
            "recogniser": run["recogniser"],
        }
    out["likeness"]["gap_new_minus_old"] = float(gaps["new"].mean() - gaps["old"].mean())
    out["likeness"]["gap_new_minus_old_interval"] = _interval(lambda x, y: rate(x) - rate(y), gaps["new"], gaps["old"])
    return out


def _fmt(value: float, interval: list[float], digits: int = 3) -> str:
    return f"{value:.{digits}f} ({interval[0]:.{digits}f} to {interval[1]:.{digits}f})"


def table(summary: dict) -> str:
    lines = [
        "| face detector hit rate (Wilson / Newcombe 95%) | people | engine v2 | engine v1 | v2 - v1 "
        "| top score v2 | top score v1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, r in summary["detector"].items():
        lines.append(
            f"| {key.replace('/', ' style, ')} prior | {r['people']} | {_fmt(r['new'], r['new_interval'])} | "
            f"{_fmt(r['old'], r['old_interval'])} | {_fmt(r['new_minus_old'], r['new_minus_old_interval'])} | "
            f"{_fmt(r['new_score'], r['new_score_interval'])} | {_fmt(r['old_score'], r['old_score_interval'])} |"
        )
    like = summary["likeness"]
    lines += [
        "",
        "| likeness (held-out recogniser) | people | truth | neutral | truth - neutral |",
        "|---|---|---|---|---|",
    ]
    for name, label in (("new", "engine v2"), ("old", "engine v1")):
        r = like[name]
        lines.append(
            f"| {label} | {r['people']} | {_fmt(r['truth'], r['truth_interval'])} | "
            f"{_fmt(r['neutral'], r['neutral_interval'])} | {_fmt(r['gap'], r['gap_interval'])} |"
        )
    lines.append(f"| v2 - v1 | | | | {_fmt(like['gap_new_minus_old'], like['gap_new_minus_old_interval'])} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, help="a folder holding the reference engine's game/ package")
    parser.add_argument("--faces", type=int, default=300, help="renders per style and prior for the detector")
    parser.add_argument("--people", type=int, default=1000, help="people (one photo each) for the likeness gap")
    parser.add_argument("--only", nargs=3, metavar=("KIND", "COUNT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.only:
        _measure_here(args.only[0], int(args.only[1]), Path(args.only[2]))
        return
    if args.reference is None or not (args.reference / "game" / "engine.py").is_file():
        sys.exit(f"python -m studies.engine_v2: error: --reference {args.reference}: no game/engine.py in it")
    began = time.time()
    runs = {}
    for name, engine in (("new", REPO), ("old", args.reference.resolve())):
        runs[name] = {
            "detector": _run(engine, "detector", args.faces),
            "likeness": _run(engine, "likeness", args.people),
        }
        print(f"{name}: measured after {time.time() - began:.0f} s", flush=True)
    summary = summarise(runs["new"], runs["old"])
    summary["command"] = (
        f"python -m studies.engine_v2 --reference {args.reference} --faces {args.faces} --people {args.people}"
    )
    summary["minutes"] = round((time.time() - began) / 60, 1)
    summary["engine_versions"] = {k: runs[k]["detector"]["engine_version"] for k in runs}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    text = README.read_text() if README.exists() else ""
    begin, end = "<!-- engine-v2:begin -->", "<!-- engine-v2:end -->"
    block = f"{begin}\n`{summary['command']}` ({summary['minutes']} min):\n\n{table(summary)}\n{end}"
    if begin in text:
        README.write_text(text[: text.index(begin)] + block + text[text.index(end) + len(end) :])
    else:
        README.write_text(text + "\n" + block + "\n")
    print(table(summary))


if __name__ == "__main__":
    main()
