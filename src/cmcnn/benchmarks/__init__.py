"""Benchmarks of the networks (training, inference, interpretation), run by ``cmc bench``.

Each target measures against a baseline in the same run on the same data and records
the machine (:func:`cmcore.benchmarks.machine_info` plus the deep-learning stack).
"""
