"""core.zscores: the per-objective statistics ArmoRM and HH standardise with, against the statistics module."""
from __future__ import annotations

import statistics

import numpy as np
import pandas as pd
import pytest

from workflow_scripts.core.zscores import zscore_stats


def test_mean_and_population_std_of_each_named_column():
    frame = pd.DataFrame({"a": [0.5, 2.0, -1.0, 7.25], "b": [3.0, 3.0, 3.0, 3.0], "ignored": [np.nan] * 4})
    stats = zscore_stats(frame, ["b", "a"])
    assert list(stats) == ["b", "a"]
    assert stats["a"]["mean"] == pytest.approx(statistics.fmean(frame["a"]), rel=1e-15)
    assert stats["a"]["std"] == pytest.approx(statistics.pstdev(frame["a"]), rel=1e-15)
    assert stats["b"] == {"mean": 3.0, "std": 0.0}


def test_missing_or_non_finite_objectives_are_refused():
    frame = pd.DataFrame({"a": [1.0, np.inf]})
    with pytest.raises(ValueError, match=r"lack objective column\(s\) \['b'\]"):
        zscore_stats(frame, ["a", "b"])
    with pytest.raises(ValueError, match="'a' has non-finite scores"):
        zscore_stats(frame, ["a"])
