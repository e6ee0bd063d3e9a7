"""A zoo of every model kind, fitted once per test session, for the model × tool matrix.

Each entry fits a small model of one kind (lmer shapes, nlme residual structures, glmmTMB
covariance terms, glmer families and nAGQ, glmer_nb, lm) together with a *reduced* model of
the same kind, one fixed effect fewer, for the likelihood-ratio cell. The data are the
package's simulators (``mm.datasets``) or simple simulations here with fixed seeds, so the
zoo needs nothing from ../shared and fits in a few seconds.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

import mixedmodels as mm


@dataclass(frozen=True)
class ZooEntry:
    """How to fit one model kind: ``fit(formula)`` on ``data``, full and reduced formulas."""

    kind: str
    data: pd.DataFrame
    formula: str
    reduced: str
    fit: Callable[..., Any]  # fit(formula, data, **options)
    family: str = "gaussian"  # the response's distribution, for the checks of simulate()
    has_random: bool = True


def _gpa(n_students: int = 60) -> pd.DataFrame:
    return mm.datasets.gpa(seed=3, n_students=n_students)


def _counts(seed: int, family: str, n_groups: int = 40, per_group: int = 12) -> pd.DataFrame:
    """Grouped data with one covariate and a factor, responses of the given family."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per_group)
    x = rng.normal(size=g.size)
    f = rng.choice(["a", "b", "c"], size=g.size)
    b = rng.normal(scale=0.5, size=n_groups)[g]
    eta = 0.4 + 0.3 * x + np.select([f == "b", f == "c"], [0.2, -0.3], 0.0) + b
    if family == "poisson":
        y = rng.poisson(np.exp(eta))
    elif family == "negative_binomial":
        mu = np.exp(eta)
        y = rng.negative_binomial(2.0, 2.0 / (2.0 + mu))
    elif family == "Gamma":
        mu = np.exp(eta)
        y = rng.gamma(4.0, mu / 4.0)
    elif family == "inverse_gaussian":
        mu = np.exp(eta)
        y = rng.wald(mu, 8.0)
    else:  # binomial
        y = (rng.uniform(size=g.size) < 1.0 / (1.0 + np.exp(-eta))).astype(float)
    return pd.DataFrame(
        {
            "y": y.astype(float),
            "x": x,
            "f": pd.Categorical(f, categories=["a", "b", "c"]),
            "g": pd.Categorical([f"g{v:02d}" for v in g]),
        }
    )


def _lmer(**options: Any) -> Callable[..., Any]:
    return lambda formula, data, **more: mm.lmer(formula, data, **{**options, **more})


def _glmer(family: str, **options: Any) -> Callable[..., Any]:
    return lambda formula, data, **more: mm.glmer(
        formula, data, family=family, **{**options, **more}
    )


def _entries() -> list[ZooEntry]:
    gpa = _gpa()
    gpa3 = gpa[gpa["occasion"] <= 2].copy()  # three occasions: CorSymm with 3 correlations
    gpa3["occas"] = gpa3["occas"].cat.remove_unused_categories()
    pupils = mm.datasets.pupils(seed=3, n_pupils=400, n_primary=25, n_secondary=15)
    nurses = mm.datasets.nurses(seed=3, n_hospitals=12)
    dating = mm.datasets.speed_dating(seed=3, n_raters=60, dates_per_rater=10)
    base = "gpa ~ occasion + sex"
    e = [
        ZooEntry(
            "random intercept",
            gpa,
            f"{base} + (1 | student)",
            "gpa ~ occasion + (1 | student)",
            _lmer(),
        ),
        ZooEntry(
            "correlated slopes",
            gpa,
            f"{base} + (1 + occasion | student)",
            "gpa ~ occasion + (1 + occasion | student)",
            _lmer(),
        ),
        ZooEntry(
            "crossed",
            pupils,
            "achievement ~ sex + ses + (1 | primary_school_id) + (1 | secondary_school_id)",
            "achievement ~ ses + (1 | primary_school_id) + (1 | secondary_school_id)",
            _lmer(),
        ),
        ZooEntry(
            "nested",
            nurses,
            "stress ~ age + sex + (1 | hospital/ward)",
            "stress ~ age + (1 | hospital/ward)",
            _lmer(),
        ),
    ]
    intercept = f"{base} + (1 | student)"
    reduced = "gpa ~ occasion + (1 | student)"
    residual = {
        "VarIdent": {"variance": mm.VarIdent("semester")},
        "VarPower": {"variance": mm.VarPower("highgpa")},
        "VarExp": {"variance": mm.VarExp("occasion")},
        "VarFixed": {"variance": mm.VarFixed("highgpa")},
        "CorAR1": {"correlation": mm.CorAR1(time="occasion", group="student")},
        "CorCAR1": {"correlation": mm.CorCAR1(time="occasion", group="student")},
    }
    for name, options in residual.items():
        e.append(ZooEntry(name, gpa, intercept, reduced, _lmer(**options)))
    e.append(
        ZooEntry(
            "CorCompSymm",
            nurses,
            "stress ~ age + sex + (1 | hospital)",
            "stress ~ age + (1 | hospital)",
            _lmer(correlation=mm.CorCompSymm(group="wardid")),
        )
    )
    e.append(
        ZooEntry(
            "CorSymm",
            gpa3,
            intercept,
            reduced,
            _lmer(correlation=mm.CorSymm(group="student", time="occasion")),
        )
    )
    structured = {
        "diag term": "diag(1 + occasion | student)",
        "us term": "us(1 + occasion | student)",
        "cs term": "cs(0 + occas | student)",
        "ar1 term": "ar1(0 + occas | student)",
        "toep term": "toep(0 + occas | student)",
    }
    for name, term in structured.items():
        data = gpa if name in ("diag term", "us term") else gpa3
        e.append(
            ZooEntry(name, data, f"{base} + {term}", f"gpa ~ occasion + {term}", _lmer(reml=False))
        )
    glm_formula, glm_reduced = "y ~ x + f + (1 | g)", "y ~ x + (1 | g)"
    e.extend(
        [
            ZooEntry(
                "glmer binomial",
                dating,
                "decision ~ attractive_sc + samerace + (1 | iid)",
                "decision ~ attractive_sc + (1 | iid)",
                _glmer("binomial"),
                family="binomial",
            ),
            ZooEntry(
                "glmer binomial nagq",
                dating,
                "decision ~ attractive_sc + samerace + (1 | iid)",
                "decision ~ attractive_sc + (1 | iid)",
                _glmer("binomial", nagq=9),
                family="binomial",
            ),
            ZooEntry(
                "glmer poisson",
                _counts(1, "poisson"),
                glm_formula,
                glm_reduced,
                _glmer("poisson"),
                family="poisson",
            ),
            ZooEntry(
                "glmer Gamma",
                _counts(2, "Gamma"),
                glm_formula,
                glm_reduced,
                _glmer("Gamma", link="log"),
                family="Gamma",
            ),
            ZooEntry(
                "glmer inverse Gaussian",
                _counts(3, "inverse_gaussian"),
                glm_formula,
                glm_reduced,
                _glmer("inverse_gaussian", link="log"),
                family="inverse_gaussian",
            ),
            ZooEntry(
                "glmer_nb",
                _counts(4, "negative_binomial"),
                glm_formula,
                glm_reduced,
                lambda formula, data, **more: mm.glmer_nb(formula, data, **more),
                family="negative_binomial",
            ),
            ZooEntry(
                "lm",
                gpa,
                "gpa ~ occasion + sex",
                "gpa ~ occasion",
                lambda formula, data, **more: mm.lm(formula, data, **more),
                has_random=False,
            ),
        ]
    )
    return e


ZOO: dict[str, ZooEntry] = {entry.kind: entry for entry in _entries()}


@dataclass
class FittedKind:
    entry: ZooEntry
    model: Any
    reduced: Any


def fit_zoo() -> dict[str, FittedKind]:
    """Fit every kind and its reduced model (warnings of the fits themselves are silenced)."""
    fitted = {}
    for kind, entry in ZOO.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted[kind] = FittedKind(
                entry, entry.fit(entry.formula, entry.data), entry.fit(entry.reduced, entry.data)
            )
    return fitted
