"""Simulated example data sets shaped like the classic mixed-model teaching data.

The package does not ship the original data files. Each function here simulates a
data frame with the same columns, dtypes, level orders and grouping structure as
one of the four data sets of the "Mixed Models with R" chapter, drawing the
response from the mixed model fitted to the real data (parameters close to the
published fit). The data are for demos and examples: they behave like the real
data but they are not the real data.

* :func:`gpa` -- repeated measures: six semesters of grade point average per
  student (random intercepts and slopes).
* :func:`pupils` -- cross-classified: pupils in primary *and* secondary schools
  (crossed random effects).
* :func:`nurses` -- hierarchical: nurses in wards in hospitals (nested random
  effects).
* :func:`speed_dating` -- binary outcome: repeated yes/no decisions per rater
  (logistic random-intercept model).

Every simulator takes a ``seed`` passed to :func:`numpy.random.default_rng`: the
same seed gives an identical frame. Factor columns are unordered
:class:`pandas.Categorical` with the level order of the original R factors, so the
first level is the reference level of treatment contrasts, as in R.
:mod:`.files` reads the chapter's own CSV/Parquet files with R's factor levels (CLI, demo).

May import: :mod:`mixedmodels.errors` only; no model code reads this package.

Examples
--------
>>> from mixedmodels import datasets
>>> datasets.load("nurses").shape
(1000, 11)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

__all__ = ["gpa", "load", "nurses", "pupils", "speed_dating"]

# Level orders of the factor columns, as in the original R data.
_LEVELS: dict[str, dict[str, list[str]]] = {
    "gpa": {
        "occas": [
            "year 1 semester 1",
            "year 1 semester 2",
            "year 2 semester 1",
            "year 2 semester 2",
            "year 3 semester 1",
            "year 3 semester 2",
        ],
        "job": ["no job", "1 hour", "2 hours", "3 hours", "4 or more hours"],
        "sex": ["male", "female"],
        "admitted": ["no", "yes"],
        "semester": ["1", "2"],
    },
    "pupils": {
        "sex": ["male", "female"],
        "ses": ["lowest", "2", "3", "4", "5", "highest"],
        "primary_denominational": ["no", "yes"],
        "secondary_denominational": ["no", "yes"],
    },
    "nurses": {
        "sex": ["Male", "Female"],
        "wardtype": ["general care", "special care"],
        "hospsize": ["small", "medium", "large"],
        "treatment": ["Ctrl", "Training"],
    },
    "speed_dating": {
        "sex": ["Female", "Male"],
        "samerace": ["No", "Yes"],
        "decision": ["No", "Yes"],
    },
}


def _factor(codes: np.ndarray, levels: Sequence[str]) -> pd.Categorical:
    """Unordered categorical from integer codes (-1 is missing)."""
    return pd.Categorical.from_codes(np.asarray(codes, dtype=np.int64), categories=list(levels))


def _latent_sd(observed_sd: float, step: float) -> float:
    """Noise SD that, after rounding to multiples of ``step``, has SD ``observed_sd``.

    Rounding adds (about) uniform noise of variance ``step**2 / 12``; the real data
    are rounded, so their fitted residual SD already includes it.
    """
    return float(np.sqrt(max(observed_sd**2 - step**2 / 12.0, (observed_sd / 2) ** 2)))


def _check_positive(**sizes: int) -> None:
    for name, value in sizes.items():
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer. Got {value!r}.")


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _allocate(n: int, proportions: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    """Codes 0..k-1 for ``n`` units, counts as close as possible to ``proportions``.

    Stratified allocation (largest remainders), then shuffled: every level with a
    sizeable share appears even for few units.
    """
    p = np.asarray(proportions, dtype=float)
    p = p / p.sum()
    counts = np.floor(p * n).astype(np.int64)
    remainder = p * n - counts
    order = np.argsort(-remainder, kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return rng.permutation(np.repeat(np.arange(p.size), counts))


def gpa(seed: int | None = 0, n_students: int = 200) -> pd.DataFrame:
    """Simulate grade point averages over six semesters (repeated measures).

    Shaped like the ``gpa`` data of the "Mixed Models with R" chapter: one row per
    student and semester, six semesters (``occasion`` 0..5) per student. The
    response follows the random intercept and slope model
    ``gpa ~ occasion + sex + (1 + occasion | student)``::

        gpa = 2.56 + 0.08 * female + 0.106 * occasion
              + u0[student] + u1[student] * occasion + e

    with student intercept SD 0.21, slope SD 0.067, intercept-slope correlation
    -0.1 and residual SD 0.206 (the fit of ``lmer(gpa ~ occasion + (1 + occasion |
    student))`` to the real data: intercept 2.60, slope 0.106). About half of the
    students are female, so the marginal intercept is about 2.60. The student
    intercepts correlate weakly (about 0.18) with ``highgpa``. ``gpa`` is rounded
    to one decimal and clipped to [1, 4], like the real data.

    Parameters
    ----------
    seed : int or None, default 0
        Seed for :func:`numpy.random.default_rng`; ``None`` gives fresh data.
    n_students : int, default 200
        Number of students; the frame has ``6 * n_students`` rows.

    Returns
    -------
    pandas.DataFrame
        Columns (dtype):

        - ``student`` (category): levels ``"1"`` .. ``str(n_students)``.
        - ``occas`` (category): ``"year 1 semester 1"`` .. ``"year 3 semester 2"``.
        - ``gpa`` (float64): grade point average, one decimal, in [1, 4].
        - ``job`` (category): hours of work that semester; levels ``"no job"``,
          ``"1 hour"``, ``"2 hours"``, ``"3 hours"``, ``"4 or more hours"`` (mostly
          ``"2 hours"``, as in the real data; varies within student).
        - ``sex`` (category): ``"male"``, ``"female"``; constant within student.
        - ``highgpa`` (float64): high-school GPA, 2.0 to 4.0 in steps of 0.1;
          constant within student.
        - ``admitted`` (category): ``"no"``, ``"yes"``; constant within student and
          missing (NaN) for about a third of the students, as in the real data.
        - ``year`` (int64): 1, 2, 3.
        - ``semester`` (category): ``"1"``, ``"2"``.
        - ``occasion`` (int64): 0 .. 5, the semester counted from the first.

    See Also
    --------
    load : Load any of the simulated data sets by name.

    Examples
    --------
    >>> from mixedmodels.datasets import gpa
    >>> df = gpa(seed=1)
    >>> df.shape
    (1200, 10)
    >>> df["occasion"].unique().tolist()
    [0, 1, 2, 3, 4, 5]
    >>> df["sex"].cat.categories.tolist()
    ['male', 'female']
    """
    _check_positive(n_students=n_students)
    rng = np.random.default_rng(seed)
    levels = _LEVELS["gpa"]
    n = int(n_students)
    n_occ = 6

    female, highgpa, admitted, u0, u1 = _gpa_students(rng, n)
    student = np.repeat(np.arange(n), n_occ)
    occasion = np.tile(np.arange(n_occ), n)
    mu = 2.56 + 0.08 * female[student] + 0.106 * occasion + u0[student] + u1[student] * occasion
    y = mu + rng.normal(0.0, _latent_sd(0.206, 0.1), size=n * n_occ)
    y = np.clip(np.round(y, 1), 1.0, 4.0)
    job = _gpa_jobs(rng, u0[student], occasion)

    year = occasion // 2 + 1
    semester = occasion % 2
    return pd.DataFrame(
        {
            "student": _factor(student, [str(i) for i in range(1, n + 1)]),
            "occas": _factor(occasion, levels["occas"]),
            "gpa": y.astype(np.float64),
            "job": _factor(job, levels["job"]),
            "sex": _factor(female[student].astype(np.int64), levels["sex"]),
            "highgpa": highgpa[student].astype(np.float64),
            "admitted": _factor(admitted[student], levels["admitted"]),
            "year": year.astype(np.int64),
            "semester": _factor(semester, levels["semester"]),
            "occasion": occasion.astype(np.int64),
        }
    )


#: the gpa students' intercept SD
_GPA_SD0 = 0.21


def _gpa_students(
    rng: np.random.Generator, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The students' covariates (female, highgpa, admitted with −1 for missing) and their
    random intercepts and slopes, the intercept partly explained by highgpa."""
    # Student-level covariates.
    female = rng.random(n) < 0.525
    highgpa = rng.integers(20, 41, size=n) / 10.0
    p_yes = np.where(female, 0.59, 0.41)
    admitted = np.where(rng.random(n) < p_yes, 1, 0)
    admitted[rng.random(n) < 0.32] = -1  # missing, like a third of the real students

    # Random effects: intercept partly explained by highgpa (corr ~0.18), total SD 0.21.
    sd0, sd1, rho = _GPA_SD0, 0.067, -0.1
    b_high = 0.18 * sd0 / 0.606  # 0.606: SD of highgpa, uniform on 2.0..4.0
    sd0_rest = np.sqrt(sd0**2 - (b_high * 0.606) ** 2)
    cov = np.array([[sd0_rest**2, rho * sd0 * sd1], [rho * sd0 * sd1, sd1**2]])
    u = rng.multivariate_normal(np.zeros(2), cov, size=n, method="cholesky")
    u0 = b_high * (highgpa - 3.0) + u[:, 0]
    u1 = u[:, 1]
    return female, highgpa, admitted, u0, u1


def _gpa_jobs(rng: np.random.Generator, u0: np.ndarray, occasion: np.ndarray) -> np.ndarray:
    """Job hours per row (codes 0..4 of ``_LEVELS["gpa"]["job"]``) given each row's student
    intercept ``u0``: mostly 2 hours; 3 hours ~15% of semesters (more often for weaker
    students), 1 hour only in later semesters, as in the real data."""
    z = -u0 / _GPA_SD0
    p3 = _logistic(-1.75 + 0.5 * z)
    p1 = np.array([0.0, 0.0, 0.035, 0.025, 0.09, 0.11])[occasion] * np.exp(-0.3 * z)
    draw = rng.random(len(occasion))
    return np.where(draw < p1, 1, np.where(draw < p1 + p3 * (1 - p1), 3, 2))


def pupils(
    seed: int | None = 0, n_pupils: int = 1000, n_primary: int = 50, n_secondary: int = 30
) -> pd.DataFrame:
    """Simulate pupils' achievement in crossed primary and secondary schools.

    Shaped like the ``pupils`` data of the "Mixed Models with R" chapter: each pupil
    attended one primary and one secondary school, and the pupils of a primary
    school spread over many secondary schools, so the two school factors are
    *crossed*, not nested. The response follows
    ``achievement ~ sex + ses + (1 | primary_school_id) + (1 | secondary_school_id)``
    with the published fit as parameters: intercept 5.92, female +0.26, ses effects
    0, 0.13, 0.10, 0.30, 0.35, 0.62 (levels ``lowest`` .. ``highest``), primary
    school SD 0.416, secondary school SD 0.257 and residual SD 0.688.
    ``achievement`` is rounded to one decimal, like the real data. The
    denominational indicators are school-level attributes without an effect.

    Parameters
    ----------
    seed : int or None, default 0
        Seed for :func:`numpy.random.default_rng`; ``None`` gives fresh data.
    n_pupils : int, default 1000
        Number of pupils (rows).
    n_primary : int, default 50
        Number of primary schools (50 in the real data, about 20 pupils each).
    n_secondary : int, default 30
        Number of secondary schools (30 in the real data).

    Returns
    -------
    pandas.DataFrame
        Columns (dtype):

        - ``PUPIL`` (int64): pupil id 1 .. ``n_pupils``; rows sorted by primary school.
        - ``primary_school_id`` (int64): 1 .. ``n_primary``; every school has pupils
          when ``n_pupils >= n_primary``.
        - ``secondary_school_id`` (int64): 1 .. ``n_secondary`` (a school may get no
          pupil when there are few pupils).
        - ``achievement`` (float64): one decimal.
        - ``sex`` (category): ``"male"``, ``"female"``.
        - ``ses`` (category): ``"lowest"``, ``"2"``, ``"3"``, ``"4"``, ``"5"``,
          ``"highest"``.
        - ``primary_denominational`` (category): ``"no"``, ``"yes"``; constant
          within primary school.
        - ``secondary_denominational`` (category): ``"no"``, ``"yes"``; constant
          within secondary school.

    See Also
    --------
    load : Load any of the simulated data sets by name.

    Examples
    --------
    >>> from mixedmodels.datasets import pupils
    >>> df = pupils(seed=1)
    >>> df.shape
    (1000, 8)
    >>> int(df["primary_school_id"].max()), int(df["secondary_school_id"].max())
    (50, 30)
    >>> df["ses"].cat.categories.tolist()
    ['lowest', '2', '3', '4', '5', 'highest']
    """
    _check_positive(n_pupils=n_pupils, n_primary=n_primary, n_secondary=n_secondary)
    rng = np.random.default_rng(seed)
    levels = _LEVELS["pupils"]
    n, n_p, n_s = int(n_pupils), int(n_primary), int(n_secondary)

    primary, secondary = _pupil_schools(rng, n, n_p, n_s)
    female = (rng.random(n) < 0.473).astype(np.int64)
    ses = rng.choice(6, size=n, p=[0.058, 0.098, 0.147, 0.225, 0.329, 0.143])
    primary_denom = (rng.random(n_p) < 0.6).astype(np.int64)
    secondary_denom = (rng.random(n_s) < 0.7).astype(np.int64)

    y = _pupil_achievement(rng, female, ses, primary, secondary, n_p, n_s)

    return pd.DataFrame(
        {
            "PUPIL": np.arange(1, n + 1, dtype=np.int64),
            "primary_school_id": (primary + 1).astype(np.int64),
            "secondary_school_id": (secondary + 1).astype(np.int64),
            "achievement": y.astype(np.float64),
            "sex": _factor(female, levels["sex"]),
            "ses": _factor(ses, levels["ses"]),
            "primary_denominational": _factor(
                primary_denom[primary], levels["primary_denominational"]
            ),
            "secondary_denominational": _factor(
                secondary_denom[secondary], levels["secondary_denominational"]
            ),
        }
    )


def _pupil_schools(
    rng: np.random.Generator, n: int, n_p: int, n_s: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each pupil's primary and secondary school (codes), crossed."""
    # Primary school of each pupil: one pupil per school first (no empty schools),
    # the rest at random, giving unequal sizes (SD ~4.5 for 20 per school, as in
    # the real data).
    first = rng.permutation(n_p)[: min(n, n_p)]
    rest = rng.integers(n_p, size=n - first.size)
    primary = np.sort(np.concatenate([first, rest]))

    # Secondary school: each primary school has its own (Dirichlet) preferences
    # around the overall popularity of the secondary schools, so a primary school
    # feeds ~13 of 30 secondary schools, as in the real data -> crossed design.
    popularity = rng.gamma(60.0, size=n_s)
    popularity /= popularity.sum()
    prefs = rng.dirichlet(80.0 * popularity, size=n_p)
    u_draw = rng.random(n)
    cdf = np.cumsum(prefs, axis=1)
    cdf[:, -1] = 1.0
    secondary = (u_draw[:, None] > cdf[primary]).sum(axis=1)
    return primary, secondary


def _pupil_achievement(
    rng: np.random.Generator,
    female: np.ndarray,
    ses: np.ndarray,
    primary: np.ndarray,
    secondary: np.ndarray,
    n_p: int,
    n_s: int,
) -> np.ndarray:
    """Achievement from the published fit: fixed effects, the two schools' effects and
    the residual, rounded to one decimal in [0, 10]."""
    ses_effect = np.array([0.0, 0.132, 0.098, 0.298, 0.354, 0.616])
    primary_effect = rng.normal(0.0, 0.416, size=n_p)
    secondary_effect = rng.normal(0.0, 0.257, size=n_s)
    y = (
        5.924
        + 0.261 * female
        + ses_effect[ses]
        + primary_effect[primary]
        + secondary_effect[secondary]
        + rng.normal(0.0, _latent_sd(0.688, 0.1), size=len(female))
    )
    return np.clip(np.round(y, 1), 0.0, 10.0)


def nurses(
    seed: int | None = 0,
    n_hospitals: int = 25,
    wards_per_hospital: int = 4,
    nurses_per_ward: int = 10,
) -> pd.DataFrame:
    """Simulate nurses' stress in wards nested in hospitals.

    Shaped like the ``nurses`` data of the "Mixed Models with R" chapter: nurses
    work in wards, wards belong to hospitals (*nested* grouping). ``ward`` is
    numbered 1, 2, ... within each hospital, so it repeats across hospitals; use
    ``(1 | hospital/ward)`` or the globally unique ``wardid``. Within each hospital,
    odd wards are general care and even wards special care, and half of the wards
    of each type get the training intervention (a cluster-randomised design, as in
    the real data). The response follows the published fit of
    ``stress ~ age + sex + experience + treatment + wardtype + hospsize +
    (1 | hospital) + (1 | hospital:ward)``: intercept 5.38, age +0.022, female
    -0.453, experience -0.062, Training -0.70, special care +0.05, medium
    hospital +0.49, large hospital +0.90, hospital SD 0.345, ward SD 0.580 and
    residual SD 0.466. Like the real data, ``stress`` is an integer score from 1 to
    7 (the rounding is part of the residual SD).

    Parameters
    ----------
    seed : int or None, default 0
        Seed for :func:`numpy.random.default_rng`; ``None`` gives fresh data.
    n_hospitals : int, default 25
        Number of hospitals.
    wards_per_hospital : int, default 4
        Number of wards in each hospital.
    nurses_per_ward : int, default 10
        Number of nurses in each ward; the frame has
        ``n_hospitals * wards_per_hospital * nurses_per_ward`` rows.

    Returns
    -------
    pandas.DataFrame
        Columns (dtype):

        - ``hospital`` (int64): 1 .. ``n_hospitals``.
        - ``ward`` (int64): 1 .. ``wards_per_hospital`` within each hospital.
        - ``wardid`` (int64): ``hospital * 10 + ward`` (``* 100`` when there are
          more than 9 wards per hospital), unique across hospitals.
        - ``nurse`` (int64): 1 .. number of rows.
        - ``age`` (int64): 23 to 64 years.
        - ``sex`` (category): ``"Male"``, ``"Female"`` (about 74% female).
        - ``experience`` (int64): years, correlated with age (about 0.8).
        - ``stress`` (int64): 1 to 7.
        - ``wardtype`` (category): ``"general care"``, ``"special care"``; ward level.
        - ``hospsize`` (category): ``"small"``, ``"medium"``, ``"large"``;
          hospital level.
        - ``treatment`` (category): ``"Ctrl"``, ``"Training"``; ward level.

    See Also
    --------
    load : Load any of the simulated data sets by name.

    Examples
    --------
    >>> from mixedmodels.datasets import nurses
    >>> df = nurses(seed=1)
    >>> df.shape
    (1000, 11)
    >>> df.groupby("wardid")["hospital"].nunique().max()
    np.int64(1)
    >>> df["treatment"].cat.categories.tolist()
    ['Ctrl', 'Training']
    """
    _check_positive(
        n_hospitals=n_hospitals,
        wards_per_hospital=wards_per_hospital,
        nurses_per_ward=nurses_per_ward,
    )
    rng = np.random.default_rng(seed)
    n_h, n_w, n_n = int(n_hospitals), int(wards_per_hospital), int(nurses_per_ward)

    # Hospital level: size (9 small, 12 medium, 4 large of 25 in the real data).
    hospsize = _allocate(n_h, [9, 12, 4], rng)

    wards = _nurse_wards(rng, n_h, n_w)
    return _nurses_in_wards(rng, wards, hospsize, n_n, _LEVELS["nurses"])


def _nurses_in_wards(
    rng: np.random.Generator,
    wards: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    hospsize: np.ndarray,
    n_n: int,
    levels: dict[str, list[str]],
) -> pd.DataFrame:
    """The nurses of the wards (``n_n`` each): their covariates, the stress score and the
    frame, one row per nurse."""
    ward_hospital, ward_number, wardtype, treatment, wardid = wards
    n_h, n_wards = len(hospsize), len(ward_hospital)
    n = n_wards * n_n
    # Nurse level.
    ward = np.repeat(np.arange(n_wards), n_n)
    hospital = ward_hospital[ward]
    age = rng.integers(23, 65, size=n)
    experience = np.round(0.41 * age - 0.54 + rng.normal(0.0, 3.5, size=n))
    experience = np.clip(experience, 1, age - 18).astype(np.int64)
    female = (rng.random(n) < 0.735).astype(np.int64)

    fixed_part = (
        5.380
        + 0.022 * age
        - 0.453 * female
        - 0.062 * experience
        - 0.700 * treatment[ward]
        + 0.051 * wardtype[ward]
        + np.array([0.0, 0.489, 0.902])[hospsize[hospital]]
    )
    stress = _nurse_stress(rng, fixed_part, hospital, ward, n_h, n_wards)

    return pd.DataFrame(
        {
            "hospital": (hospital + 1).astype(np.int64),
            "ward": ward_number[ward].astype(np.int64),
            "wardid": wardid[ward].astype(np.int64),
            "nurse": np.arange(1, n + 1, dtype=np.int64),
            "age": age.astype(np.int64),
            "sex": _factor(female, levels["sex"]),
            "experience": experience,
            "stress": stress,
            "wardtype": _factor(wardtype[ward], levels["wardtype"]),
            "hospsize": _factor(hospsize[hospital], levels["hospsize"]),
            "treatment": _factor(treatment[ward], levels["treatment"]),
        }
    )


def _nurse_wards(
    rng: np.random.Generator, n_h: int, n_w: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The wards: hospital, number within it, type (alternating within hospital), the
    training randomised within hospital and ward type (half of each), and the unique id."""
    ward_hospital = np.repeat(np.arange(n_h), n_w)
    ward_number = np.tile(np.arange(1, n_w + 1), n_h)
    wardtype = (ward_number % 2 == 0).astype(np.int64)
    treatment = np.zeros(n_h * n_w, dtype=np.int64)
    for h in range(n_h):
        for t in (0, 1):
            idx = np.flatnonzero((ward_hospital == h) & (wardtype == t))
            k = idx.size // 2 + (int(rng.integers(2)) if idx.size % 2 else 0)
            treatment[rng.permutation(idx)[:k]] = 1
    multiplier = 10 ** len(str(n_w))
    wardid = (ward_hospital + 1) * multiplier + ward_number
    return ward_hospital, ward_number, wardtype, treatment, wardid


def _nurse_stress(
    rng: np.random.Generator,
    fixed_part: np.ndarray,
    hospital: np.ndarray,
    ward: np.ndarray,
    n_h: int,
    n_wards: int,
) -> np.ndarray:
    """The stress score: the fixed part plus hospital and ward effects and the residual,
    rounded to an integer from 1 to 7."""
    hospital_effect = rng.normal(0.0, 0.345, size=n_h)
    ward_effect = rng.normal(0.0, 0.580, size=n_wards)
    mu = fixed_part + hospital_effect[hospital] + ward_effect[ward]
    stress = np.round(mu + rng.normal(0.0, _latent_sd(0.466, 1.0), size=len(fixed_part)))
    return np.clip(stress, 1, 7).astype(np.int64)


def speed_dating(
    seed: int | None = 0, n_raters: int = 500, dates_per_rater: int = 16
) -> pd.DataFrame:
    """Simulate yes/no decisions of speed-dating participants about their dates.

    Shaped like the ``speed_dating`` data of the "Mixed Models with R" chapter
    (only the columns its model uses): each rater (``iid``) meets several partners,
    rates them, and decides whether to see them again. The decision follows the
    logistic random-intercept model fitted to the real data,
    ``decision ~ sex + samerace + attractive_sc + sincere_sc + intelligent_sc +
    (1 | iid)`` with ``family = binomial``: intercept -0.743, Male +0.156,
    sameraceYes +0.314, attractive_sc +0.502, sincere_sc +0.089, intelligent_sc
    +0.143 and rater intercept SD 1.645.

    The ratings are simulated on the original 0-10 integer scale (correlated, with
    rater-specific leniency), then scaled like the real ``*_sc`` columns:
    ``2 * (rating - mean(rating))``. Unlike the real data there are no missing
    ratings.

    Parameters
    ----------
    seed : int or None, default 0
        Seed for :func:`numpy.random.default_rng`; ``None`` gives fresh data.
    n_raters : int, default 500
        Number of raters (500 in the real data).
    dates_per_rater : int, default 16
        Number of partners each rater meets (5 to 22, about 15 on average, in the
        real data); the frame has ``n_raters * dates_per_rater`` rows.

    Returns
    -------
    pandas.DataFrame
        Columns (dtype):

        - ``iid`` (int64): rater id 1 .. ``n_raters``.
        - ``sex`` (category): ``"Female"``, ``"Male"``; rater level.
        - ``samerace`` (category): ``"No"``, ``"Yes"``: partner of the same race.
        - ``attractive_sc``, ``sincere_sc``, ``intelligent_sc`` (float64): scaled
          ratings of the partner, mean 0.
        - ``decision`` (category): ``"No"``, ``"Yes"``.

    See Also
    --------
    load : Load any of the simulated data sets by name.

    Examples
    --------
    >>> from mixedmodels.datasets import speed_dating
    >>> df = speed_dating(seed=1)
    >>> df.shape
    (8000, 7)
    >>> df["decision"].cat.categories.tolist()
    ['No', 'Yes']
    """
    _check_positive(n_raters=n_raters, dates_per_rater=dates_per_rater)
    rng = np.random.default_rng(seed)
    levels = _LEVELS["speed_dating"]
    n_r, n_d = int(n_raters), int(dates_per_rater)
    n = n_r * n_d
    rater = np.repeat(np.arange(n_r), n_d)

    male = (_allocate(n_r, [1, 1], rng) == 1).astype(np.int64)
    # Share of same-race partners varies by rater (mean ~0.39 as in the real data).
    p_same = rng.beta(1.7, 2.6, size=n_r)
    samerace = (rng.random(n) < p_same[rater]).astype(np.int64)

    # Ratings attractive, sincere, intelligent: rater leniency + partner-specific
    # part, both with the correlations of the real ratings; integer 0..10.
    corr = np.array([[1.0, 0.39, 0.38], [0.39, 1.0, 0.66], [0.38, 0.66, 1.0]])
    mean = np.array([6.19, 7.25, 7.45])
    sd_between = np.array([0.6, 0.6, 0.6])
    sd_within = np.array([1.84, 1.66, 1.48])
    chol = np.linalg.cholesky(corr)
    between = (rng.standard_normal((n_r, 3)) @ chol.T) * sd_between
    within = (rng.standard_normal((n, 3)) @ chol.T) * sd_within
    ratings = np.clip(np.round(mean + between[rater] + within), 0, 10)
    scaled = 2.0 * (ratings - ratings.mean(axis=0))

    rater_effect = rng.normal(0.0, 1.645, size=n_r)
    eta = (
        -0.743
        + 0.156 * male[rater]
        + 0.314 * samerace
        + scaled @ np.array([0.502, 0.089, 0.143])
        + rater_effect[rater]
    )
    decision = (rng.random(n) < _logistic(eta)).astype(np.int64)

    return pd.DataFrame(
        {
            "iid": (rater + 1).astype(np.int64),
            "sex": _factor(male[rater], levels["sex"]),
            "samerace": _factor(samerace, levels["samerace"]),
            "attractive_sc": scaled[:, 0].astype(np.float64),
            "sincere_sc": scaled[:, 1].astype(np.float64),
            "intelligent_sc": scaled[:, 2].astype(np.float64),
            "decision": _factor(decision, levels["decision"]),
        }
    )


_SIMULATORS: dict[str, Callable[..., pd.DataFrame]] = {
    "gpa": gpa,
    "nurses": nurses,
    "pupils": pupils,
    "speed_dating": speed_dating,
}


def load(name: str, seed: int | None = 0, **kwargs: int) -> pd.DataFrame:
    """Simulate one of the example data sets by name.

    Parameters
    ----------
    name : {"gpa", "nurses", "pupils", "speed_dating"}
        Data set name (case-insensitive; ``"speed-dating"`` is accepted too).
    seed : int or None, default 0
        Seed for :func:`numpy.random.default_rng`; ``None`` gives fresh data.
    **kwargs : int
        Size arguments of the simulator, e.g. ``n_students=50`` for ``"gpa"``.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    ValueError
        If ``name`` is not one of the data set names.

    Examples
    --------
    >>> from mixedmodels import datasets
    >>> datasets.load("gpa", seed=3, n_students=10).shape
    (60, 10)
    >>> datasets.load("sleepstudy")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Unknown data set 'sleepstudy'. Valid names: 'gpa', 'nurses', ...
    """
    key = name.strip().lower().replace("-", "_") if isinstance(name, str) else name
    if key not in _SIMULATORS:
        valid = ", ".join(repr(k) for k in _SIMULATORS)
        raise ValueError(f"Unknown data set {name!r}. Valid names: {valid}.")
    return _SIMULATORS[key](seed=seed, **kwargs)
