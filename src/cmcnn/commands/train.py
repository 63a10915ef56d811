"""``cmc train``: train one of the paper's networks on a dataset (resumable)."""
from __future__ import annotations

import argparse

NAME = "train"
HELP = "train a single-channel or the multi-channel CNN on a dataset (Yan et al. 2020, §2.4)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="dataset file (cmc dataset); its split labels choose train/validation")
    p.add_argument("--channels", required=True,
                   help="Star, Fxs, Fxb, Ypar (single-channel network), a comma list, or all (multi-channel)")
    p.add_argument("--out", required=True, help="run directory (rerun the same command to resume)")
    p.add_argument("--epochs", type=int, default=100, help="epochs in all (default 100; the paper: 1000)")
    p.add_argument("--batch-size", type=int, default=50, help="images per batch (default 50)")
    p.add_argument("--lr", type=float, default=0.01, help="initial learning rate (default 0.01)")
    p.add_argument("--decay", type=float, default=1e-4,
                   help="inverse-time decay per step: lr/(1 + decay*step) (default 1e-4)")
    p.add_argument("--optimizer", default="rmsprop", choices=("rmsprop", "adam", "sgd"),
                   help="optimizer (default rmsprop, as the paper)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, order, dropout (default 0)")
    p.add_argument("--max-train", type=int, default=None, help="use at most N training images")
    p.add_argument("--augment", action="store_true",
                   help="apply a random symmetry of the square (8 rotations/flips) to each image each epoch")
    p.add_argument("--dropout", type=float, default=0.1, help="dropout between dense layers (default 0.1)")
    p.add_argument("--cache", default="auto", choices=("auto", "memory", "none"),
                   help="hold the images in memory or stream them from the file (default auto: < 4 GB)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for TensorFlow (default: all)")
    p.add_argument("--no-progress", action="store_true", help="no per-epoch lines or bars")


def run(args: argparse.Namespace) -> int:
    from cmcnn.train.training import TrainConfig, train

    config = TrainConfig(channels=args.channels, epochs=args.epochs, batch_size=args.batch_size,
                         lr=args.lr, decay=args.decay, optimizer=args.optimizer, seed=args.seed,
                         max_train=args.max_train, augment=args.augment, dropout=args.dropout)
    s = train(args.data, args.out, config, cache=args.cache, threads=args.threads,
              progress=not args.no_progress)
    if s.epochs_new:
        print(f"{s.run}: {s.epochs_new} epochs in {s.seconds:.0f} s ({s.images_per_second:.0f} images/s), "
              f"{s.epochs_done} in all; best validation loss {s.best_val_loss:.5f} "
              f"(rms {s.best_val_loss ** 0.5:.3f} dex) at epoch {s.best_epoch}")
    else:
        print(f"{s.run}: complete ({s.epochs_done} epochs; best validation loss "
              f"{s.best_val_loss:.5f} at epoch {s.best_epoch})")
    return 0
