"""``cmc card``: the model card of an exported network, from its metadata and its evaluation."""
from __future__ import annotations

import argparse

NAME = "card"
HELP = "write the model card (Markdown) of an ONNX model from its metadata and a `cmc evaluate` report"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="ONNX model from `cmc export`")
    p.add_argument("--report", required=True,
                   help="folder of `cmc evaluate MODEL --data DATA --baseline CHANNELS` (its metrics.json)")
    p.add_argument("--out", default=None, help="card to write (default: MODEL with .md)")
    p.add_argument("--regenerate", default="", metavar="COMMANDS",
                   help="shell commands that regenerate the model, shown in the card")
    p.add_argument("--check", default="", metavar="COMMANDS",
                   help="shell commands that reproduce the card's numbers, shown in the card")


def run(args: argparse.Namespace) -> int:
    from cmcnn.evaluate.card import write_card

    out = write_card(args.model, args.report, args.out, regenerate=args.regenerate, check=args.check)
    print(f"wrote {out}")
    return 0
