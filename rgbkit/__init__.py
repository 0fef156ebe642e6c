"""rgbkit: masses and ages of red giant branch stars from LAMOST spectra."""
__version__ = "0.1.0"

from .io.lamost import LamostFormatError, read_lamost, read_many  # noqa: E402
from .spectra import Spectrum, SpectrumMeta  # noqa: E402

__all__ = ["__version__", "LamostFormatError", "Spectrum", "SpectrumMeta", "read_lamost", "read_many"]
