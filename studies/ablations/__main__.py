"""`make demo-ablations`: the demo model and its ablations over seeds -> runs/ablations/ABLATIONS.md (variants.py).

`python -m studies.ablations [--seeds 0 1 2] [--variants ...] [--out runs/ablations]`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from studies.ablations.variants import REPO, VARIANTS, score, table, train
from studies.demo.stages import load_benchmark, log


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--out", default="runs/ablations")
    args = parser.parse_args(argv)
    bench = load_benchmark()
    scores = {
        variant: [score(train(variant, seed), bench) | {"seed": seed} for seed in args.seeds]
        for variant in args.variants
    }
    out = REPO / args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablations.json").write_text(json.dumps(scores, indent=2) + "\n")
    report = out / "ABLATIONS.md"
    report.write_text(f"# Ablations at demo scale ({len(args.seeds)} seeds, mean +- std)\n\n{table(scores)}\n")
    log(f"report: {report}")
    return report


if __name__ == "__main__":
    main()
