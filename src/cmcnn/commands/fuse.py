"""``cmc fuse``: a multi-channel network from single-channel runs, their masses combined linearly."""
from __future__ import annotations

import argparse

NAME = "fuse"
HELP = "combine single-channel runs into a multi-channel network (weights fitted on the validation split)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="the members' dataset (its validation split fits the weights)")
    p.add_argument("--members", required=True, metavar="RUN,RUN,...",
                   help="single-channel runs of cmc train (survey recipe: redshift input and error head)")
    p.add_argument("--out", required=True, help="the fused run directory (for cmc export / cmc evaluate)")


def run(args: argparse.Namespace) -> int:
    from cmcnn.train.fuse import fuse_runs

    members = [m.strip() for m in args.members.split(",") if m.strip()]
    cfg = fuse_runs(members, args.data, args.out)
    f = cfg["fusion"]
    terms = " ".join(f"{w:+.3f} {ch}" for w, ch in zip(f["weights"], cfg["channels"]))
    members_rms = ", ".join(f"{ch} {v:.4f}" for ch, v in f["member_validation_rms_dex"].items())
    print(f"{args.out}: log10 M = {f['intercept']:+.3f} {terms}; validation rms {f['validation_rms_dex']:.4f} dex "
          f"(members: {members_rms}); error scale {cfg['error_scale']:.3f}")
    return 0
