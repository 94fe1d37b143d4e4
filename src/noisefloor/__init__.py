"""noisefloor: is a hyperparameter improvement real, or seed noise?

The analysis is one call, the same the command line makes::

    import pandas as pd
    import noisefloor

    result = noisefloor.analyze(pd.read_csv("results/runs.csv"), "val_acc")
    print(result.comparisons[["config", "diff", "ci_low", "ci_high", "verdict", "seeds_needed"]])
    print(result.summary.noise_floor, result.summary.noise_floor_ci)

:func:`analyze` is :func:`noisefloor.stats.analyze`; it returns an
:class:`~noisefloor.stats.AnalysisResult` (a typed ``summary``, one
``comparisons`` row per variant, ``importance``, ``excluded``).
"""

__version__ = "0.1.0"

__all__ = ["analyze", "AnalysisResult"]


def __getattr__(name):
    # Imported on first use: `noisefloor train` and the fork server's client import
    # this package and must not pay for scipy and pandas.
    if name in __all__:
        from . import stats

        return getattr(stats, name)
    raise AttributeError(f"module 'noisefloor' has no attribute {name!r}")
