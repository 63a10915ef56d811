"""``cmc train``: train a network on a dataset (resumable), by the survey recipe or the paper's."""
from __future__ import annotations

import argparse

NAME = "train"
HELP = "train a single-channel or the multi-channel CNN on a dataset (Yan et al. 2020, §2.4)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="dataset file (cmc dataset); its split labels choose train/validation")
    p.add_argument("--channels", required=True,
                   help="Star, Fxs, Fxb, Ypar (single-channel network), a comma list, or all (multi-channel)")
    p.add_argument("--out", required=True, help="run directory (rerun the same command to resume)")
    p.add_argument("--recipe", default="survey", choices=("survey", "paper"),
                   help="survey (default): redshift input, compact head, error head, 8-fold augmentation, "
                        "Adam with a cosine schedule and weight decay, 30 epochs; paper: the paper's network "
                        "and RMSprop with inverse-time decay, 100 epochs (docs/train.md). The options below "
                        "change single settings of the recipe")
    p.add_argument("--no-redshift", action="store_true",
                   help="image only: no redshift input (the paper's networks)")
    p.add_argument("--epochs", type=int, default=None, help="epochs in all (survey 30, paper 100; the paper ran 1000)")
    p.add_argument("--batch-size", type=int, default=None, help="images per batch (default 50)")
    p.add_argument("--lr", type=float, default=None, help="initial learning rate (survey 0.001, paper 0.01)")
    p.add_argument("--schedule", default=None, choices=("inverse-time", "cosine"),
                   help="learning-rate schedule (survey cosine to 0, paper inverse-time)")
    p.add_argument("--decay", type=float, default=None,
                   help="inverse-time decay per step: lr/(1 + decay*step) (default 1e-4)")
    p.add_argument("--weight-decay", type=float, default=None,
                   help="decoupled weight decay, biases excluded (survey 1e-4, paper 0)")
    p.add_argument("--optimizer", default=None, choices=("rmsprop", "adam", "sgd"),
                   help="optimizer (survey adam, paper rmsprop)")
    p.add_argument("--head", default=None, choices=("paper", "compact"),
                   help="dense head: the paper's 200-100-100-20 or the compact one (survey compact)")
    p.add_argument("--no-uncertainty", action="store_true", help="no error head (the paper has none)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, order, dropout (default 0)")
    p.add_argument("--max-train", type=int, default=None, help="use at most N training images")
    aug = p.add_mutually_exclusive_group()
    aug.add_argument("--augment", dest="augment", action="store_true", default=None,
                     help="a random symmetry of the square (8 rotations/flips) per image and epoch (survey: on)")
    aug.add_argument("--no-augment", dest="augment", action="store_false", help="no augmentation (paper)")
    p.add_argument("--dropout", type=float, default=None, help="dropout between dense layers (default 0.1)")
    p.add_argument("--cache", default="auto", choices=("auto", "memory", "none"),
                   help="hold the images in memory or stream them from the file (default auto: < 4 GB)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for TensorFlow (default: all)")
    p.add_argument("--no-progress", action="store_true", help="no per-epoch lines or bars")


def run(args: argparse.Namespace) -> int:
    from cmcnn.train.training import train
    from cmcnn.train.recipe import TrainConfig

    given = {k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size), ("lr", args.lr),
                               ("schedule", args.schedule), ("decay", args.decay),
                               ("weight_decay", args.weight_decay), ("optimizer", args.optimizer),
                               ("head", args.head), ("augment", args.augment), ("dropout", args.dropout))
             if v is not None}
    if args.no_redshift:
        given["redshift"] = False
    if args.no_uncertainty:
        given["uncertainty"] = False
    given.update(seed=args.seed, max_train=args.max_train)
    if args.recipe == "survey":
        config = TrainConfig.survey(args.channels, **given)
    else:
        config = TrainConfig(channels=args.channels, **{"epochs": 100, **given})
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
