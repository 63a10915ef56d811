"""Training: the networks (paper layer list and its variants), image batches, the training loop, calibration."""
