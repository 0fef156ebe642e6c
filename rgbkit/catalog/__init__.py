"""Survey-scale catalogs: score folders of LAMOST files, resumably, locally or on Dask.

Where things are:

==============  =============================================================
``schema``      the columns (names, units, descriptions, types), an empty frame
``domain``      out-of-domain rules and bits (:class:`OOD`, :class:`DomainRules`)
``models``      which models a run uses and how workers load them (:class:`ModelRef`)
``score``       spectra or files in, catalog rows out
``writers``     Parquet parts, the merged Parquet/FITS/CSV file, reading back
``run``         the resumable local / process-pool / Dask run (:func:`build_catalog`)
==============  =============================================================

Line indices live in :mod:`rgbkit.lines`; the ``rgbkit catalog`` and
``rgbkit fetch`` commands in :mod:`rgbkit.cli`.
"""
from ..lines import INDICES, line_indices
from ..spectra import BANDS
from .domain import OOD, DomainRules
from .models import ModelRef, default_models, fast_model
from .run import POOL_MIN_FILES, CatalogRunError, build_catalog
from .schema import COLUMNS, column_docs_markdown, empty_frame
from .score import score_files, score_spectra
from .writers import read_catalog

__all__ = ["build_catalog", "score_spectra", "score_files", "line_indices", "DomainRules", "OOD",
           "COLUMNS", "read_catalog", "default_models", "ModelRef", "fast_model", "column_docs_markdown",
           "empty_frame", "INDICES", "BANDS", "POOL_MIN_FILES", "CatalogRunError"]
