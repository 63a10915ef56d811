"""Interpretation: Gaussian-mask scans, Deep Dream, core/ring sums, and maps of them."""
