"""Screenshot throughput: bare rasteriser vs end-to-end generation, per style and size, with a time breakdown.

`python -m bench.render [--count N]` writes bench/results/render.json and the table in bench/README.md.
Speed is reported as a ratio to the bare rasteriser measured in the same run on the same mesh, since
absolute numbers on a shared 2-core machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
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
GOAL_RATIO = 0.30


def _measure(style: str, size: int, count: int) -> dict:
    """Runs in a fresh interpreter (`--only`), so peak memory and GL state belong to this configuration alone."""

    from game import parameters as P
    from game.dataset import _encode, generate
    from game.engine import Game
    from game.shading import Lighting

    game = Game(size, style)
    params = P.sample_uniform(np.random.default_rng(0), count)
    vertices = game.head.vertices.astype(np.float32)
    colours, gloss = game.appearance(np.zeros(P.NUM_PARAMETERS, np.float32))
    game.renderer.render(vertices, colours, game.camera, Lighting.studio(), gloss)  # context + buffers

    start = time.perf_counter()
    for _ in range(count):
        game.renderer.render(vertices, colours, game.camera, Lighting.studio(), gloss)
    bare = count / (time.perf_counter() - start)

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
        c, g = game.appearance(p)
        t2 = time.perf_counter()
        if style == "game":
            image = game.renderer.render(v, c, game.camera, Lighting.studio(), g)[..., :3]
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
        "style": style,
        "size": size,
        "count": count,
        "bare_raster_per_s": bare,
        "end_to_end_per_s_1_process": end_to_end_1,
        "end_to_end_per_s_2_processes": end_to_end_2,
        "ratio_end_to_end_to_bare": end_to_end_1 / bare,
        "stage_ms": {k: 1000 * v / count for k, v in stages.items()},
        "bytes_per_image": float(np.mean(sizes)),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "vertices": int(game.head.num_vertices),
        "triangles": int(len(game.head.triangles)),
    }


def _table(results: list[dict]) -> str:
    lines = [
        "| style | px | bare raster /s | end-to-end /s (1 proc) | ratio (goal >= 0.30) | end-to-end /s (2 procs) "
        "| 100K set | KiB/img | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        minutes = 100_000 / r["end_to_end_per_s_2_processes"] / 60
        lines.append(
            f"| {r['style']} | {r['size']} | {r['bare_raster_per_s']:.0f} | {r['end_to_end_per_s_1_process']:.0f} | "
            f"{r['ratio_end_to_end_to_bare']:.2f} | {r['end_to_end_per_s_2_processes']:.0f} | {minutes:.1f} min, "
            f"{100_000 * r['bytes_per_image'] / 2**30:.1f} GiB | {r['bytes_per_image'] / 1024:.1f} | "
            f"{r['peak_rss_mib']:.0f} |"
        )
    lines += [
        "",
        "Where the time goes (ms per image, 1 process):",
        "",
        "| style | px | " + " | ".join(results[0]["stage_ms"]) + " |",
        "|---|---|" + "---|" * len(results[0]["stage_ms"]),
    ]
    for r in results:
        lines.append(f"| {r['style']} | {r['size']} | " + " | ".join(f"{v:.2f}" for v in r["stage_ms"].values()) + " |")
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
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200, help="images per configuration")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--only", nargs=2, metavar=("STYLE", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.only:
        print(json.dumps(_measure(args.only[0], int(args.only[1]), args.count)))
        return
    results = []
    for style in ("game", "photo"):
        for size in args.sizes:
            # A fresh interpreter per configuration: its own peak memory, GL context and worker pool.
            done = subprocess.run(
                [sys.executable, "-m", "bench.render", "--count", str(args.count), "--only", style, str(size)],
                check=True,
                capture_output=True,
                text=True,
            )
            result = json.loads(done.stdout.strip().splitlines()[-1])
            results.append(result)
            print(
                f"{style:5s} {size:3d}px  bare {result['bare_raster_per_s']:7.0f}/s  "
                f"end-to-end {result['end_to_end_per_s_1_process']:6.0f}/s "
                f"(ratio {result['ratio_end_to_end_to_bare']:.2f}), "
                f"2 procs {result['end_to_end_per_s_2_processes']:6.0f}/s"
            )
    machine = f"{platform.machine()}, {multiprocessing.cpu_count()} cores, {time.strftime('%Y-%m-%d')}"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": machine, "goal_ratio": GOAL_RATIO, "results": results}, indent=2) + "\n")
    update_readme(results, machine)
    print(f"wrote {RESULTS} and {README}")


if __name__ == "__main__":
    main()
