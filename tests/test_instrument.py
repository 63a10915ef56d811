"""Noise and beam presets: flux conservation, FWHM, seeded noise, order of operations."""
from __future__ import annotations

import numpy as np
import pytest

from cmcore import instrument
from cmcore.errors import InputError

PIX = 10.0  # arcsec


def _point(n=121, at=(60, 60), flux=1.0):
    img = np.zeros((n, n))
    img[at] = flux
    return img


def _fwhm_from_moments(img):
    y, x = np.indices(img.shape)
    tot = img.sum()
    cx, cy = (img * x).sum() / tot, (img * y).sum() / tot
    var = (img * ((x - cx) ** 2 + (y - cy) ** 2)).sum() / tot / 2.0  # per axis
    return 2.0 * np.sqrt(2.0 * np.log(2.0)) * np.sqrt(var) * PIX / 60.0


def _fwhm_from_half_maximum(img):
    row = img[img.shape[0] // 2]
    half = row.max() / 2.0
    above = np.flatnonzero(row >= half)
    lo, hi = above[0], above[-1]
    # linear interpolation of the two half-maximum crossings
    left = lo - 1 + (half - row[lo - 1]) / (row[lo] - row[lo - 1])
    right = hi + (row[hi] - half) / (row[hi] - row[hi + 1])
    return (right - left) * PIX / 60.0


@pytest.mark.parametrize("fwhm", [1.4, 9.66 / 4, 0.5])
def test_beam_keeps_flux_and_has_requested_fwhm(fwhm):
    out = instrument.beam(_point(), fwhm, PIX)
    assert out.sum() == pytest.approx(1.0, rel=1e-6)
    assert _fwhm_from_moments(out) == pytest.approx(fwhm, rel=0.01)
    assert _fwhm_from_half_maximum(out) == pytest.approx(fwhm, rel=0.03)


def test_beam_edge_loses_flux_as_documented():
    # zero outside the image: a source on the edge keeps only about half its flux
    out = instrument.beam(_point(at=(60, 0)), 1.4, PIX)
    assert 0.45 < out.sum() < 0.6


def test_paper_preset_values():
    paper = instrument.get_instrument("paper")
    assert paper["Ypar"] == instrument.ChannelModel(1e-8, 1.4)
    assert paper["Fxs"].noise_rms == 9e-16 and paper["Fxb"].beam_fwhm_arcmin == pytest.approx(4 / 60)
    # Table 1's 2.14e11 read as Msun/Mpc^2 (the surface density of eq. 2): 2.14e5 Msun/kpc^2
    assert paper["Star"] == instrument.ChannelModel(2.14e5, 0.0)
    assert not paper["Star"].mass_per_pixel
    literal = instrument.get_instrument("paper-literal")
    assert literal["Star"] == instrument.ChannelModel(2.14e11, 0.0, "solMass per pixel")
    assert literal["Ypar"] == paper["Ypar"] and literal["Fxs"] == paper["Fxs"]
    assert paper.describe()["channels"]["Star"]["noise_unit"] == "solMass / kpc2 per pixel"
    assert literal.describe()["channels"]["Star"]["noise_unit"] == "solMass per pixel"
    assert instrument.get_instrument("planck")["Ypar"] == instrument.ChannelModel(1e-6, 9.66)
    ideal = instrument.get_instrument("ideal")
    assert all(ideal[c] == instrument.ChannelModel() for c in ("Star", "Fxs", "Fxb", "Ypar"))


def test_custom_overrides_and_errors():
    inst = instrument.get_instrument("paper", noise={"Ypar": 3e-7}, beam={"Ypar": 2.0})
    assert inst.name == "paper+custom" and inst["Ypar"] == instrument.ChannelModel(3e-7, 2.0)
    assert inst["Fxs"] == instrument.get_instrument("paper")["Fxs"]
    with pytest.raises(InputError, match="unknown instrument preset"):
        instrument.get_instrument("hubble")
    with pytest.raises(InputError, match="noise_rms"):
        instrument.get_instrument("paper", noise={"Ypar": -1.0})
    with pytest.raises(InputError, match="unknown channel"):
        instrument.get_instrument("paper", beam={"Y": 1.0})


def test_seeded_noise_is_reproducible_and_has_requested_rms():
    img = np.zeros((200, 200))
    inst = instrument.get_instrument("ideal", noise={"Ypar": 1e-8})
    a = instrument.apply_instrument("Ypar", img, inst, PIX, 42)
    b = instrument.apply_instrument("Ypar", img, inst, PIX, np.random.default_rng(42))
    c = instrument.apply_instrument("Ypar", img, inst, PIX, 43)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.std() == pytest.approx(1e-8, rel=0.02)
    assert np.array_equal(a, instrument.draw_noise((200, 200), 1e-8, 42))


def test_noise_is_added_before_the_beam():
    # white noise smoothed by a Gaussian of sigma s pixels has rms / (2 sqrt(pi) s)
    img = np.zeros((300, 300))
    out = instrument.apply_instrument("Ypar", img, "paper", PIX, 1)
    s = instrument.beam_sigma_pixels(1.4, PIX)
    inner = out[30:-30, 30:-30]
    assert inner.std() == pytest.approx(1e-8 / (2 * np.sqrt(np.pi) * s), rel=0.1)
    # and the same noise, smoothed: beam(noise)
    assert np.allclose(out, instrument.beam(instrument.draw_noise(img.shape, 1e-8, 1), 1.4, PIX), rtol=1e-12, atol=0)


def test_star_noise_readings():
    img = np.zeros((200, 200))
    area = 97.5  # kpc^2
    # paper: a surface density per pixel, whatever the pixel area
    out = instrument.apply_instrument("Star", img, "paper", PIX, 5, pixel_area_kpc2=area)
    assert out.std() == pytest.approx(2.14e5, rel=0.02)
    assert np.array_equal(out, instrument.apply_instrument("Star", img, "paper", PIX, 5))
    # paper-literal: a mass per pixel, divided by the pixel area
    out = instrument.apply_instrument("Star", img, "paper-literal", PIX, 5, pixel_area_kpc2=area)
    assert out.std() == pytest.approx(2.14e11 / area, rel=0.02)
    with pytest.raises(InputError, match="pixel_area_kpc2"):
        instrument.apply_instrument("Star", img, "paper-literal", PIX, 5)
    # an override keeps the preset's unit; with_star_noise sets a surface density
    assert instrument.get_instrument("paper-literal", noise={"Star": 1e9})["Star"].mass_per_pixel
    inst = instrument.with_star_noise("paper-literal", 3e5)
    assert inst["Star"] == instrument.ChannelModel(3e5, 0.0) and inst["Ypar"].noise_rms == 1e-8
    with pytest.raises(InputError, match="noise_unit"):
        instrument.ChannelModel(1.0, 0.0, "solMass")


def test_ideal_is_identity_and_input_untouched():
    img = np.random.default_rng(0).random((20, 20))
    keep = img.copy()
    out = instrument.apply_instrument("Fxs", img, "ideal", PIX, 0)
    assert np.array_equal(out, img) and out is not img and np.array_equal(img, keep)


def test_stellar_noise_from_sample():
    # a planted sample: a 4x4 image of 1e6 Msun/kpc^2 with one 4.1e7 pixel, a 2x2 one of 2e6;
    # every pixel weighs the same: mean = (15e6 + 41e6 + 4 * 2e6) / 20 = 3.2e6
    a = np.full((4, 4), 1e6)
    a[1, 2] = 4.1e7
    b = np.full((2, 2), 2e6)
    assert instrument.stellar_noise_from_sample([a, b]) == pytest.approx(3.2e5, rel=1e-12)
    stack = np.stack([a, 3 * a])  # one (N, ny, nx) array
    assert instrument.stellar_noise_from_sample(stack) == pytest.approx(0.1 * 2 * a.mean(), rel=1e-12)
    # the rule's promise: the mean pixel then has S/N = 10
    flat = np.full((300, 300), 5e6)
    rms = instrument.stellar_noise_from_sample([flat])
    noisy = instrument.apply_instrument("Star", flat, instrument.with_star_noise("paper", rms), PIX, 3)
    assert noisy.mean() / noisy.std() == pytest.approx(10.0, rel=0.02)
    for bad in ([], [np.array([[1.0, np.nan]])], [np.array([[-1.0]])]):
        with pytest.raises(InputError):
            instrument.stellar_noise_from_sample(bad)


def test_beam_margin():
    assert instrument.beam_margin_pixels(instrument.get_instrument("paper"), "Star", PIX) == 0
    s = instrument.beam_sigma_pixels(1.4, PIX)
    assert instrument.beam_margin_pixels(instrument.get_instrument("paper"), "Ypar", PIX) == int(np.ceil(4 * s))
