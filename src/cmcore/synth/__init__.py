"""The synthetic universe: a physically grounded stand-in for BAHAMAS.

``generate(preset, seed, out)`` writes an EAGLE-style snapshot, a cmc-halos
catalogue with M200/R200 measured from the particles, and ``synth.json``.
See ``docs/synth.md`` for what is modelled (and what is not) and the sources.

Modules: :mod:`.presets` (budgets and resolution), :mod:`.cosmo` (WMAP9 in
astropy and colossus), :mod:`.relations` (scaling relations with scatter),
:mod:`.haloes` (mass function, targets, clustering, columns),
:mod:`.profiles` (particle realisation), :mod:`.writer` (streaming HDF5),
:mod:`.universe` (orchestration), :mod:`.measure` (relations measured back
from the particles), :mod:`.plots` (the relations figure).
"""
from .presets import PRESETS, SynthConfig, get_preset
from .universe import SynthResult, generate

__all__ = ["PRESETS", "SynthConfig", "SynthResult", "generate", "get_preset"]
