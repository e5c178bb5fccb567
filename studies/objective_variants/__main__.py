"""Train and score the objective variants of variants.py; writes one JSON per variant and TABLE.md.

python -m studies.objective_variants [NAME ...] [--out studies/objective_variants/results]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from studies.objective_variants.variants import REPO, VARIANTS, held_out_sets, summary, table, train


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="variants to train (if missing) and score; all by default: " + ", ".join(VARIANTS),
    )
    parser.add_argument("--out", default="studies/objective_variants/results")
    args = parser.parse_args(argv)
    # Checked here, not with choices=: Python 3.11's argparse checks an empty "*" list against the choices.
    unknown = [name for name in args.names if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    args.names = args.names or list(VARIANTS)
    return args


def main(argv=None) -> Path:
    args = parse_args(argv)
    from eval.descriptors import ParameterDescriptor, load_regression
    from eval.recovery import VISIBLE_GREY_LEVELS, read_visibility
    from game import parameters as P

    checkpoints = {name: train(name, VARIANTS[name][1]) for name in args.names}
    sets = held_out_sets()
    visible = np.flatnonzero(read_visibility() >= VISIBLE_GREY_LEVELS)
    out = REPO / args.out
    out.mkdir(parents=True, exist_ok=True)
    for name, checkpoint in checkpoints.items():
        descriptor = ParameterDescriptor(name, *load_regression(checkpoint))
        result = {"variant": name, "what": VARIANTS[name][0], "overrides": VARIANTS[name][1]}
        for set_name, (images, truth) in sets.items():
            predicted = torch.cat([descriptor(images[i : i + 100]) for i in range(0, len(images), 100)]).numpy()
            result[set_name] = summary(predicted, truth, visible, P.names())
        (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        print(name, {s: round(result[s]["rmse"] / result[s]["rmse_predicting_zero"], 4) for s in sets}, flush=True)
    # Every variant scored so far, this run's and earlier ones', in VARIANTS order.
    scored = [json.loads(path.read_text()) for name in VARIANTS if (path := out / f"{name}.json").is_file()]
    (out / "TABLE.md").write_text(table(scored))
    return out


if __name__ == "__main__":
    main()
