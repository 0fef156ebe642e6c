"""Asteroseismic scaling relations: where the training labels come from.

Solar reference values as in the paper (Section 2): Teff = 5,777 K,
numax = 3,090 uHz, Delta nu = 135.1 uHz (Huber et al. 2011).
"""
from __future__ import annotations

import numpy as np

TEFF_SUN = 5777.0
NUMAX_SUN = 3090.0
DNU_SUN = 135.1


def scaling_radius(numax, dnu, teff):
    """R / Rsun = (numax/numax_sun) (dnu/dnu_sun)^-2 (Teff/Teff_sun)^0.5."""
    numax, dnu, teff = (np.asarray(v, dtype=float) for v in (numax, dnu, teff))
    return (numax / NUMAX_SUN) * (dnu / DNU_SUN) ** -2 * (teff / TEFF_SUN) ** 0.5


def scaling_mass(numax, dnu, teff):
    """M / Msun = (numax/numax_sun)^3 (dnu/dnu_sun)^-4 (Teff/Teff_sun)^1.5."""
    numax, dnu, teff = (np.asarray(v, dtype=float) for v in (numax, dnu, teff))
    return (numax / NUMAX_SUN) ** 3 * (dnu / DNU_SUN) ** -4 * (teff / TEFF_SUN) ** 1.5


def scaling_logg(numax, teff):
    """log g from numax alone: g / g_sun = (numax/numax_sun) (Teff/Teff_sun)^0.5, log g_sun = 4.438."""
    numax, teff = np.asarray(numax, dtype=float), np.asarray(teff, dtype=float)
    return 4.438 + np.log10(numax / NUMAX_SUN) + 0.5 * np.log10(teff / TEFF_SUN)
