"""Screenshot throughput: bare rasteriser vs end-to-end generation, per style and size, with a time breakdown,
and optionally against a reference engine (another checkout's `game/`) measured in the same run.

`python -m bench.render [--count N] [--reference DIR]` writes bench/results/render.json and the table in
bench/README.md. DIR holds another engine version's `game/` package, e.g. main's:
    mkdir -p /tmp/engine-main && git archive main game | tar -x -C /tmp/engine-main
Speed is reported as ratios measured in the same run: end-to-end to the bare rasteriser on the same mesh,
and this engine to the reference. Every (engine, style, size) runs in a fresh interpreter; the engines
alternate over --rounds rounds and each number is the median over its rounds, so the load of a shared
machine falls on both alike.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).with_name("results") / "render.json"
README = Path(__file__).with_name("README.md")
REPO = Path(__file__).resolve().parents[1]
GOAL_RATIO = 0.30  # end-to-end / bare rasteriser
GOAL_REFERENCE = 0.75  # end-to-end screenshots/s of this engine / the reference's (issue 14, at 256 px)
RATES = ("bare_raster_per_s", "end_to_end_per_s_1_process", "end_to_end_per_s_2_processes")


def _shade(game, params):
    """(colours, gloss, extra render keywords) of any engine version: v2 adds a per-vertex material."""
    shade = getattr(game.appearance, "shade", None)
    if shade is None:
        colours, gloss = game.appearance(params)
        return colours, gloss, {}
    s = shade(params)
    return s.colours, s.gloss, {"material": s.material}


def _bare_rate(game, colours, gloss, extra, count: int) -> float:
    """Screenshots/s of the bare rasteriser: the neutral head re-drawn (upload, draw, read-back)."""
    from game.shading import Lighting

    vertices = game.head.vertices.astype(np.float32)
    game.renderer.render(vertices, colours, game.camera, Lighting.studio(), gloss, **extra)  # context + buffers
    start = time.perf_counter()
    for _ in range(count):
        game.renderer.render(vertices, colours, game.camera, Lighting.studio(), gloss, **extra)
    return count / (time.perf_counter() - start)


def _measure(style: str, size: int, count: int) -> dict:
    """Runs in a fresh interpreter (`--only`), so peak memory and GL state belong to this configuration alone;
    it measures whichever engine `import game` finds (the working directory's first)."""

    from game import parameters as P
    from game.dataset import _encode, generate
    from game.engine import ENGINE_VERSION, Game
    from game.shading import Lighting

    game = Game(size, style)
    params = P.sample_uniform(np.random.default_rng(0), count)
    colours, gloss, extra = _shade(game, np.zeros(P.NUM_PARAMETERS, np.float32))
    bare = _bare_rate(game, colours, gloss, extra, count)
    flat = {}
    if extra:  # the same mesh drawn by the plain v1 shader (no detail texture, no soft skin light)
        plain = game.renderer.__class__(
            size, game.head.triangles, samples=game.samples, supersample=game.supersample, solid=game.head.solid,
            detail_shading=False,
        )  # fmt: skip
        game.__dict__["renderer"], detailed = plain, game.renderer
        flat["bare_raster_per_s_v1_shading"] = _bare_rate(game, colours, gloss, {}, count)
        game.__dict__["renderer"] = detailed

    stages = dict.fromkeys(
        ("skinning", "appearance", "normals", "upload", "draw_and_readback", "photo_finish", "encode", "write"), 0.0
    )
    tmp = Path(tempfile.mkdtemp())
    fmt = "png" if style == "game" else "jpg"
    sizes = []
    for i, p in enumerate(params):
        t0 = time.perf_counter()
        v = game.vertices(p)
        t1 = time.perf_counter()
        c, g, kw = _shade(game, p)
        t2 = time.perf_counter()
        if style == "game":
            image = game.renderer.render(v, c, game.camera, Lighting.studio(), g, **kw)[..., :3]
            t3 = time.perf_counter()
        else:
            rng = np.random.default_rng(i)
            image = game.render(p, rng)  # pose, light, finish: photo_finish holds all but the skin/colour time
            t3 = time.perf_counter()
        timings = game.renderer.last_timings
        data = _encode(np.ascontiguousarray(image), fmt)
        t4 = time.perf_counter()
        (tmp / f"{i}.{fmt}").write_bytes(data)
        t5 = time.perf_counter()
        sizes.append(len(data))
        stages["skinning"] += t1 - t0
        stages["appearance"] += t2 - t1
        stages["normals"] += timings["normals_s"]
        stages["upload"] += timings["upload_s"]
        stages["draw_and_readback"] += timings["draw_s"] + timings["readback_s"]
        if style == "photo":
            stages["photo_finish"] += (t3 - t2) - timings["total_s"]
        stages["encode"] += t4 - t3
        stages["write"] += t5 - t4
    shutil.rmtree(tmp)

    out = Path(tempfile.mkdtemp())
    start = time.perf_counter()
    generate(out / "one", count, size=size, style=style, workers=1, progress=False)
    end_to_end_1 = count / (time.perf_counter() - start)
    start = time.perf_counter()
    generate(out / "two", 2 * count, size=size, style=style, workers=2, progress=False)
    end_to_end_2 = 2 * count / (time.perf_counter() - start)
    shutil.rmtree(out)
    return {
        "engine_version": ENGINE_VERSION,
        "style": style,
        "size": size,
        "count": count,
        "bare_raster_per_s": bare,
        **flat,
        "end_to_end_per_s_1_process": end_to_end_1,
        "end_to_end_per_s_2_processes": end_to_end_2,
        "ratio_end_to_end_to_bare": end_to_end_1 / bare,
        "stage_ms": {k: 1000 * v / count for k, v in stages.items()},
        "bytes_per_image": float(np.mean(sizes)),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "vertices": int(game.head.num_vertices),
        "triangles": int(len(game.head.triangles)),
    }


def _run(engine_dir: Path, style: str, size: int, count: int) -> dict:
    """One configuration in a fresh interpreter whose `import game` finds engine_dir's engine."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    done = subprocess.run(
        [sys.executable, "-m", "bench.render", "--count", str(count), "--only", style, str(size)],
        cwd=engine_dir,  # `python -m` puts the working directory first on sys.path: its game/ wins
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _median(runs: list[dict]) -> dict:
    """The per-round measurements of one configuration folded into medians (rates, stage times, the rest as is)."""
    out = dict(runs[-1])
    for key, value in runs[0].items():
        if isinstance(value, float):
            out[key] = float(np.median([r[key] for r in runs]))
    out["stage_ms"] = {k: float(np.median([r["stage_ms"][k] for r in runs])) for k in runs[0]["stage_ms"]}
    out["ratio_end_to_end_to_bare"] = out["end_to_end_per_s_1_process"] / out["bare_raster_per_s"]
    out["rounds"] = len(runs)
    return out


def _table(results: list[dict]) -> str:
    with_reference = any("reference" in r for r in results)
    head = (
        "| style | px | bare raster /s | end-to-end /s (1 proc) | ratio (goal >= 0.30) | end-to-end /s (2 procs) "
        "| 100K set | KiB/img | peak RSS MiB |"
    )
    rule = "|---|---|---|---|---|---|---|---|---|"
    if with_reference:
        head += " reference end-to-end /s (1 proc) | this / reference (goal >= 0.75 at 256 px) |"
        rule += "---|---|"
    lines = [head, rule]
    for r in results:
        minutes = 100_000 / r["end_to_end_per_s_2_processes"] / 60
        line = (
            f"| {r['style']} | {r['size']} | {r['bare_raster_per_s']:.0f} | {r['end_to_end_per_s_1_process']:.0f} | "
            f"{r['ratio_end_to_end_to_bare']:.2f} | {r['end_to_end_per_s_2_processes']:.0f} | {minutes:.1f} min, "
            f"{100_000 * r['bytes_per_image'] / 2**30:.1f} GiB | {r['bytes_per_image'] / 1024:.1f} | "
            f"{r['peak_rss_mib']:.0f} |"
        )
        if with_reference:
            ref = r["reference"]
            line += f" {ref['end_to_end_per_s_1_process']:.0f} | {r['ratio_to_reference']:.2f} |"
        lines.append(line)
    lines += [
        "",
        "Where the time goes (ms per image, 1 process):",
        "",
        "| engine | style | px | " + " | ".join(results[0]["stage_ms"]) + " |",
        "|---|---|---|" + "---|" * len(results[0]["stage_ms"]),
    ]
    for r in results:
        for label, row in [("this", r)] + ([("reference", r["reference"])] if "reference" in r else []):
            lines.append(
                f"| {label} (v{row.get('engine_version', 1)}) | {r['style']} | {r['size']} | "
                + " | ".join(f"{v:.2f}" for v in row["stage_ms"].values())
                + " |"
            )
    shading = [r for r in results if "bare_raster_per_s_v1_shading" in r]
    if shading:
        lines += [
            "",
            "What the v2 shading costs (detail texture, soft skin light): bare rasteriser, v2 mesh, ms per image:",
            "",
            "| style | px | v1 shading | v2 shading | cost |",
            "|---|---|---|---|---|",
        ]
        for r in shading:
            v1, v2 = 1000 / r["bare_raster_per_s_v1_shading"], 1000 / r["bare_raster_per_s"]
            lines.append(f"| {r['style']} | {r['size']} | {v1:.2f} | {v2:.2f} | {v2 - v1:+.2f} |")
    return "\n".join(lines)


def update_readme(results: list[dict], machine: str) -> None:
    begin, end = "<!-- render-bench:begin -->", "<!-- render-bench:end -->"
    block = f"{begin}\nMeasured by `python -m bench.render` on {machine}.\n\n{_table(results)}\n{end}"
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    if begin in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text += "\n## Screenshot rendering\n\n" + block + "\n"
    README.write_text(text)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200, help="images per configuration and round")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--styles", nargs="+", default=["game", "photo"], choices=["game", "photo"])
    parser.add_argument("--reference", type=Path, help="a folder holding another engine's game/ package")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per engine (medians are kept)")
    parser.add_argument("--only", nargs=2, metavar=("STYLE", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.only:
        print(json.dumps(_measure(args.only[0], int(args.only[1]), args.count)))
        return
    if args.reference is not None and not (args.reference / "game" / "engine.py").is_file():
        sys.exit(f"python -m bench.render: error: --reference {args.reference}: no game/engine.py in it")
    results = []
    for style in args.styles:
        for size in args.sizes:
            ours, theirs = [], []
            for _ in range(args.rounds if args.reference else 1):
                ours.append(_run(REPO, style, size, args.count))
                if args.reference:
                    theirs.append(_run(args.reference.resolve(), style, size, args.count))
            result = _median(ours)
            line = (
                f"{style:5s} {size:3d}px  bare {result['bare_raster_per_s']:7.0f}/s  "
                f"end-to-end {result['end_to_end_per_s_1_process']:6.0f}/s "
                f"(ratio {result['ratio_end_to_end_to_bare']:.2f}), "
                f"2 procs {result['end_to_end_per_s_2_processes']:6.0f}/s"
            )
            if theirs:
                result["reference"] = _median(theirs)
                reference_rate = result["reference"]["end_to_end_per_s_1_process"]
                result["ratio_to_reference"] = result["end_to_end_per_s_1_process"] / reference_rate
                line += f"; reference {reference_rate:6.0f}/s (this / reference {result['ratio_to_reference']:.2f})"
            results.append(result)
            print(line, flush=True)
    machine = f"{platform.machine()}, {multiprocessing.cpu_count()} cores, {time.strftime('%Y-%m-%d')}"
    summary = {"machine": machine, "goal_ratio": GOAL_RATIO, "results": results}
    if args.reference:
        summary["goal_ratio_to_reference"] = GOAL_REFERENCE
        summary["reference"] = str(args.reference)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    update_readme(results, machine)
    print(f"wrote {RESULTS} and {README}")


if __name__ == "__main__":
    main()
