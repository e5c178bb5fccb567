"""`python -m models COMMAND`: fetch (fill the weight cache), where (its folder), build-assets (remake game data)."""

from __future__ import annotations

import argparse


def _fetch(args) -> None:
    from models.weights import FACE_API_VERSION, MEDIAPIPE_VERSION, fetch_face_api, fetch_mediapipe

    print(f"mediapipe {MEDIAPIPE_VERSION} assets -> {fetch_mediapipe(force=args.force)}")
    print(f"face-api {FACE_API_VERSION} assets -> {fetch_face_api(force=args.force)}")


def _where(args) -> None:
    from models.weights import cache_dir

    print(cache_dir())


def _build_assets(args) -> None:
    from models.game_assets import build_game_assets

    for name, path in build_game_assets(args.out).items():
        print(f"{name}: {path}")
    print("compare with game/data/; copying them there changes every render (bump game.engine.ENGINE_VERSION)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m models", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch", help="download the pretrained weights into the cache (make setup runs it)")
    fetch.add_argument("--force", action="store_true", help="download again even if present")
    fetch.set_defaults(run=_fetch)
    sub.add_parser("where", help="print the cache folder").set_defaults(run=_where)
    build = sub.add_parser(
        "build-assets",
        help="maintainers: remake the game's face data (topology CSV, neutral face) from the weight cache",
    )
    build.add_argument("--out", default="runs/game-assets", help="folder to write (not game/data: compare first)")
    build.set_defaults(run=_build_assets)
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
