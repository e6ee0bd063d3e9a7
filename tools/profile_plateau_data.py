"""The data of the profile-plateau fixture (tools/make_profile_plateau_fixtures.R), to stdout.

A correlated random slope, 50 groups of 8: fitted by ``y ~ x + (1 + x | g)`` its
correlation's profile crosses ζ = ±1.96 on the branch through the estimate and, further
down, meets a plateau where the slope SD reaches 0 (the correlation is then unidentified),
so the whole trace is not monotone.  Usage: python tools/profile_plateau_data.py > data.csv
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd


def plateau_data(seed: int = 47) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_groups, per_group = 50, 8
    g = np.repeat(np.arange(n_groups), per_group)
    x = np.tile(np.linspace(0, 1, per_group), n_groups)
    b = rng.standard_normal((n_groups, 2)) * [0.8, 0.3]
    y = 1 + 0.5 * x + b[g, 0] + b[g, 1] * x + rng.normal(0, 0.4, g.size)
    return pd.DataFrame({"y": y, "x": x, "g": g.astype(str)})


if __name__ == "__main__":
    plateau_data().to_csv(sys.stdout, index=False, float_format="%.17g")
