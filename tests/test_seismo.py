import numpy as np
import pandas as pd
import pytest

from rgbkit.seismo import scaling_logg, scaling_mass, scaling_radius


def test_sun_is_one():
    assert scaling_mass(3090, 135.1, 5777) == pytest.approx(1.0)
    assert scaling_radius(3090, 135.1, 5777) == pytest.approx(1.0)
    assert scaling_logg(3090, 5777) == pytest.approx(4.438)


def test_hand_computed_giant():
    # numax 30 uHz, dnu 4 uHz, 4800 K: M = (30/3090)^3 (4/135.1)^-4 (4800/5777)^1.5
    m = (30 / 3090) ** 3 * (4 / 135.1) ** -4 * (4800 / 5777) ** 1.5
    assert scaling_mass(30, 4, 4800) == pytest.approx(m)
    assert 0.85 < m < 0.95  # a low-mass giant


def test_reproduces_hall2019_clump_masses(shared_data):
    h = pd.read_csv(shared_data / "catalogs/hall2019_red_clump.csv")
    m = scaling_mass(h["numax"], h["dnu"], h["Teff"])
    r = scaling_radius(h["numax"], h["dnu"], h["Teff"])
    # Hall et al. use the same uncorrected relations up to ~1-2 % reference-value differences
    assert np.median(m / h["M_Clump"]) == pytest.approx(1.0, abs=0.03)
    assert np.median(r / h["R_Clump"]) == pytest.approx(1.0, abs=0.02)
    assert np.std(r / h["R_Clump"]) < 0.02
