"""Networks: the 1D DenseNet-BC (and the baselines, in ``baselines``)."""
from .threads import apply_default as _apply_default_threads
from .densenet import DenseNet1D, DenseNetConfig, count_flops, count_parameters, paper_config, small_config, tiny_config

_apply_default_threads()

__all__ = ["DenseNet1D", "DenseNetConfig", "count_flops", "count_parameters", "paper_config", "small_config", "tiny_config"]
