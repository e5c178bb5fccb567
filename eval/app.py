"""The character creator as a local web app: `make app`, or

    python -m eval.app [--port 7860] [--ckpt RUN.ckpt|MODEL.pt|none]

serves the page on http://127.0.0.1:PORT (printed when it is up; Ctrl-C stops it): upload photos of one person, see
the face found and the character, move any slider, download the preset and the mesh (eval/app_page.py lays the page
out, eval/creator.py does the work). Without --ckpt the shipped default model reads the photos. The port (free?) and
--ckpt (there?) are checked before the model loads; a model that cannot be read stops it with one line.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys

from eval import descriptors
from eval.preflight import file_problem, refuse

PROG = "python -m eval.app"


def port_problem(port: int) -> str | None:
    """Why the app cannot listen on 127.0.0.1:`port`, or None."""
    if not 1 <= port <= 65535:
        return f"{port} is not a TCP port (1 to 65535)"
    with socket.socket() as probe:
        # As the server will: a port whose last connections linger in TIME_WAIT is free, one listened on is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            return f"127.0.0.1:{port} is in use ({error.strerror or error}): stop what runs there or pick another port"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=7860, help="the port on 127.0.0.1 to serve on (default 7860)")
    parser.add_argument(
        "--ckpt",
        help="the model: a regression or reader checkpoint (.ckpt) or an exported model (.pt); 'none' for the "
        "neutral face; default: the shipped default model weights/default/model.pt",
    )
    args = parser.parse_args(argv)
    if problem := port_problem(args.port):
        refuse(PROG, f"--port {problem}")
    if args.ckpt is None:
        try:
            args.ckpt = str(descriptors.default_model())
        except FileNotFoundError as error:
            refuse(PROG, str(error))
    if args.ckpt.lower() != "none" and (problem := file_problem(args.ckpt, "checkpoint file")):
        refuse(PROG, f"--ckpt {problem}")

    from eval.app_page import build_page, serve
    from eval.creator import Creator

    try:
        creator = Creator(args.ckpt)
    except (OSError, KeyError, ValueError) as error:
        refuse(PROG, f"--ckpt {args.ckpt}: {error}")
    # A stop by SIGTERM (a service manager, a test) closes the server and removes the download files, as Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        page = build_page(creator)
        print(f"{PROG}: the character creator, model {creator.checkpoint or 'none (the neutral face)'}", flush=True)
        url = serve(page, args.port, block=False)
        print(f"serving on {url} (Ctrl-C stops it)", flush=True)
        page.block_thread()
    finally:
        creator.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
