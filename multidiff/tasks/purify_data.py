"""Deprecated location: use :mod:`multidiff.datasets.labelled`."""
import warnings

from ..datasets.labelled import DATASETS, SEASONS, load_dataset, load_etth1_seasons

warnings.warn("multidiff.tasks.purify_data is deprecated and will be removed in the next release; use "
              "multidiff.datasets.labelled", DeprecationWarning, stacklevel=2)

__all__ = ["DATASETS", "load_dataset", "load_etth1_seasons"]
