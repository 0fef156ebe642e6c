"""rgbkit: masses and ages of red giant branch stars from LAMOST spectra."""
__version__ = "0.1.0"

from .io.lamost import LamostFormatError, read_lamost, read_many  # noqa: E402
from .spectra import Spectrum, SpectrumMeta  # noqa: E402

# Names that pull in torch are loaded on first use, so `import rgbkit` and
# the readers stay fast.
_LAZY = {
    "Preprocessor": "preprocess", "preprocess": "preprocess",
    "Ensemble": "ensemble", "ModelFormatError": "ensemble", "load_pretrained": "ensemble",
    "Classifier": "classify", "load_pretrained_classifier": "classify",
    "build_catalog": "catalog", "read_catalog": "catalog",
    "load_demo": "datasets", "load_rgb_rc": "datasets", "load_clusters": "datasets",
    "write_kepler_standin": "datasets",
    "load_labelled": "labelled", "LabelledSet": "labelled", "train_labelled": "train_labelled",
    "example_files": "examples", "example_path": "examples",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'rgbkit' has no attribute {name!r}")


__all__ = ["__version__", "LamostFormatError", "Spectrum", "SpectrumMeta", "read_lamost", "read_many", *_LAZY]
