"""Train each network NET on screenshots alone and score it (train.py; studies/screenshot_readability/README.md).

python -m studies.screenshot_readability NET [NET ...] [--steps 1500] [--benchmark] [--out DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from studies.screenshot_readability.networks import NETWORKS, REPO
from studies.screenshot_readability.train import load_set, run


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("networks", nargs="+", metavar="NET", help=", ".join(NETWORKS))
    parser.add_argument("--root", type=Path, default=REPO / "data/game-game-64-30k")
    parser.add_argument("--count", type=int, default=30000, help="screenshots to render if --root is missing")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--benchmark", action="store_true", help="also score on the demo's photo benchmark")
    parser.add_argument("--out", type=Path, default=REPO / "studies/screenshot_readability/results")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.networks) - set(NETWORKS))
    if unknown:  # checked here, not with choices=: see studies.objective_variants
        parser.error(f"unknown network(s) {unknown}; choose from {', '.join(NETWORKS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    images, parameters, split = load_set(args.root, args.count, args.size)
    return [run(name, images, parameters, split, args) for name in args.networks]


if __name__ == "__main__":
    main()
