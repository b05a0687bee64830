"""salbench: a metrics-first saliency benchmark toolkit.

Layout (each a subpackage): ``metrics`` (Numba kernels behind validating
wrappers), ``protocols`` (how a metric is computed by MIT, SALICON, the
coursework script), ``data`` (SALICON, NUS eye-tracking, synthetic),
``models`` (registry, baselines, the shallow network), ``training``,
``leaderboard`` (results files, tables, regression checks) and ``cli``.
"""

__version__ = "0.1.0"
