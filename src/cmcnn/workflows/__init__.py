"""Workflows on top of the pipeline: resumable steps, ``cmc demo`` and ``cmc reproduce``."""
