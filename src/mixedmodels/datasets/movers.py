"""Simulated students in schools where some students change school: a large, partially
crossed design (student is nested in school but for the movers).

With 100,000 students in 25,000 schools the school block of the random effects is too
large to factor densely, but its Schur complement after eliminating the students is
sparse (two schools are linked only by a student who attended both), which is what the
sparse tail factorization (:mod:`mixedmodels.lmm.sparse_tail`) is for.  The R script
``tools/make_movers_fixtures.R`` fits the CSV that :func:`write_movers_csv` writes with
lme4, and the movers rows of ``benchmarks/run.py`` time both.

Examples
--------
>>> from mixedmodels.datasets.movers import school_movers
>>> frame = school_movers(n_students=200, n_schools=50, seed=1)
>>> frame.shape
(600, 5)
>>> int((frame.groupby("student", observed=True)["school"].nunique() == 2).sum())
10
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError

__all__ = ["school_movers", "write_movers_csv"]


def school_movers(
    n_students: int = 100_000,
    n_schools: int = 25_000,
    movers: float = 0.05,
    seed: int = 20261201,
) -> pd.DataFrame:
    """Three observations per student; a fraction ``movers`` of the students spend their
    third observation in a second school.

    Responses: ``y = 1 + 0.5 x + b_student + b_school + ε`` with SDs 1, 0.6 and 0.8,
    and a binary ``passed`` drawn from ``logit⁻¹(−0.5 + 0.8 x + c_student + c_school)``
    with SDs 1 and 0.6.

    Parameters
    ----------
    n_students, n_schools : int
        Numbers of students and schools (positive).
    movers : float
        Share of students observed in a second school, in [0, 1].
    seed : int
        Seed for :func:`numpy.random.default_rng`: the same seed gives the same frame.

    Returns
    -------
    pandas.DataFrame
        Columns ``student`` and ``school`` (categoricals whose level order is R's sorted
        order of the zero-padded labels), ``x`` (standard normal), ``y``, ``passed``
        (0/1), one row per observation, students in order.

    Examples
    --------
    >>> school_movers(n_students=40, n_schools=10, movers=0.1, seed=3).columns.tolist()
    ['student', 'school', 'x', 'y', 'passed']
    """
    if n_students < 1 or n_schools < 2:
        raise DataError(
            f"school_movers needs at least 1 student and 2 schools (got {n_students} "
            f"students, {n_schools} schools)."
        )
    if not 0.0 <= movers <= 1.0:
        raise DataError(f"movers is a share of the students, in [0, 1] (got {movers}).")
    rng = np.random.default_rng(seed)
    home = rng.integers(n_schools, size=n_students)
    n_movers = int(round(movers * n_students))
    moving = rng.choice(n_students, size=n_movers, replace=False)
    # the second school differs from the first: shift by 1..n_schools-1
    second = home.copy()
    second[moving] = (home[moving] + rng.integers(1, n_schools, size=n_movers)) % n_schools
    student = np.repeat(np.arange(n_students), 3)
    school = np.column_stack([home, home, second]).ravel()
    n = student.size
    x = rng.normal(size=n)
    y = (
        1.0
        + 0.5 * x
        + rng.normal(0.0, 1.0, size=n_students)[student]
        + rng.normal(0.0, 0.6, size=n_schools)[school]
        + rng.normal(0.0, 0.8, size=n)
    )
    eta = (
        -0.5
        + 0.8 * x
        + rng.normal(0.0, 1.0, size=n_students)[student]
        + rng.normal(0.0, 0.6, size=n_schools)[school]
    )
    passed = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(np.int64)
    student_width = len(str(n_students))
    school_width = len(str(n_schools))
    return pd.DataFrame(
        {
            "student": pd.Categorical.from_codes(
                student, [f"s{i:0{student_width}d}" for i in range(n_students)]
            ),
            "school": pd.Categorical.from_codes(
                school, [f"k{i:0{school_width}d}" for i in range(n_schools)]
            ),
            "x": x,
            "y": y,
            "passed": passed,
        }
    )


def write_movers_csv(path: str | Path, **options: float) -> Path:
    """Write :func:`school_movers` (with ``options``) to ``path`` as CSV for R.

    Doubles are written with 17 significant digits, so R reads the same numbers.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     out = write_movers_csv(pathlib.Path(folder) / "m.csv", n_students=20, n_schools=5)
    ...     len(out.read_text().splitlines())
    61
    """
    path = Path(path)
    school_movers(**options).to_csv(path, index=False, float_format="%.17g")
    return path
