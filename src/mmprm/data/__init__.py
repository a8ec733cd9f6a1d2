"""Problems in, problems out: dataset adapters, conversion, loading, synthetic data."""

from mmprm.data.adapters import ADAPTERS
from mmprm.data.convert import ConvertSummary, convert
from mmprm.data.problems import iter_problems, load_problems

__all__ = ["ADAPTERS", "ConvertSummary", "convert", "iter_problems", "load_problems"]
