"""Networks: the 1D DenseNet-BC (and the baselines, in ``baselines``)."""
from .densenet import DenseNet1D, DenseNetConfig, count_flops, count_parameters, paper_config, small_config, tiny_config

__all__ = ["DenseNet1D", "DenseNetConfig", "count_flops", "count_parameters", "paper_config", "small_config", "tiny_config"]
