"""A specutils loader: ``Spectrum.read(path, format="LAMOST-LRS")``.

Registered on ``import rgbkit.io.specutils_loader`` (or ``register()``) when
specutils is installed; it wraps :func:`rgbkit.io.lamost.read_lamost`, so the
same layouts and the same errors apply.
"""
from __future__ import annotations


from .lamost import LamostFormatError, read_lamost

FORMAT = "LAMOST-LRS"
_registered = False


def identify(origin, *args, **kwargs) -> bool:
    """True for a readable LAMOST low-resolution file."""
    path = args[0] if args else None
    if not isinstance(path, (str, bytes)) and not hasattr(path, "__fspath__"):
        return False
    try:
        read_lamost(path)
    except (LamostFormatError, OSError):
        return False
    return True


def to_specutils(spec):
    """A specutils ``Spectrum`` (flux in LAMOST's relative units) from an rgbkit Spectrum."""
    import astropy.units as u
    from astropy.nddata import InverseVariance
    from specutils import Spectrum as SUSpectrum

    meta = spec.meta.as_row()
    meta["header"] = spec.meta.header
    return SUSpectrum(
        flux=spec.flux * u.dimensionless_unscaled,
        spectral_axis=spec.wavelength * u.AA,
        uncertainty=InverseVariance(spec.ivar),
        mask=(spec.ivar <= 0) | (spec.and_mask != 0),
        meta=meta,
    )


def _loader(path, **kwargs):
    return to_specutils(read_lamost(path))


def register() -> bool:
    """Register the loader with specutils; False when specutils is absent."""
    global _registered
    if _registered:
        return True
    try:
        from specutils import Spectrum as SUSpectrum
        from specutils.io.registers import data_loader
    except ImportError:
        return False
    data_loader(FORMAT, identifier=identify, dtype=SUSpectrum,
                extensions=["fits", "fits.gz"], priority=5, autogenerate_spectrumlist=False)(_loader)
    _registered = True
    return True


register()
