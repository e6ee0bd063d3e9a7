"""GLM families and links for :func:`mixedmodels.glmer`, with R's definitions.

Each family gives the variance function, the deviance residuals and the
conditional log-likelihood (−2 log p(y | μ), R's ``family$aic`` form, constants
included) that the Laplace and adaptive Gauss-Hermite deviances are built from.

Examples
--------
>>> fam = get_family("binomial")
>>> fam.link.name
'logit'
>>> round(float(fam.link.inverse(np.array([0.0]))[0]), 3)
0.5
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from ..errors import DataError, OptionError
from ..lmm import _kernels
from ..lmm._kernels import HAVE_NUMBA

_EPS = np.finfo(float).eps
_TINY = 1e-300


@dataclass(frozen=True)
class Link:
    """A link function η = g(μ) with its inverse and dμ/dη."""

    name: str
    link: Callable[[np.ndarray], np.ndarray]
    inverse: Callable[[np.ndarray], np.ndarray]
    mu_eta: Callable[[np.ndarray], np.ndarray]

    def __reduce__(self) -> tuple[Callable[[str], Link], tuple[str]]:
        # the functions are module-level lambdas, which pickle cannot name: a fitted
        # model pickles its links by name and gets the same Link back
        return _link_named, (self.name,)


def _logit_inverse(eta: np.ndarray) -> np.ndarray:
    # R's binomial()$linkinv keeps μ inside (0, 1) the same way; 1/(1 + e^−η) on η cut
    # at ±40 (where μ is clipped anyway) is several times faster than special.expit
    if HAVE_NUMBA and _is_row_vector(eta):  # PIRLS's inner loop: one compiled pass
        return _kernels.logit_inverse(eta)
    return np.clip(1.0 / (1.0 + np.exp(-np.clip(eta, -40.0, 40.0))), _EPS, 1 - _EPS)


def _is_row_vector(values: np.ndarray) -> bool:
    """A contiguous 1-d float array long enough for a compiled kernel to pay."""
    return (
        isinstance(values, np.ndarray)
        and values.ndim == 1
        and values.dtype == np.float64
        and values.size >= 256
        and values.flags.c_contiguous
    )


def _logit_mu_eta(eta: np.ndarray) -> np.ndarray:
    mu = special.expit(eta)
    return np.maximum(mu * (1.0 - mu), _EPS)


def _cloglog_inverse(eta: np.ndarray) -> np.ndarray:
    return np.clip(-np.expm1(-np.exp(np.minimum(eta, 700.0))), _EPS, 1 - _EPS)


def _cloglog_mu_eta(eta: np.ndarray) -> np.ndarray:
    eta = np.minimum(eta, 700.0)
    return np.maximum(np.exp(eta - np.exp(eta)), _EPS)


def _inverse_sqrt(eta: np.ndarray) -> np.ndarray:
    # η ≤ 0 has no mean: NaN (without numpy's warning), which PIRLS steps back from
    positive = eta > 0
    return np.where(positive, 1.0 / np.sqrt(np.where(positive, eta, 1.0)), np.nan)


def _inverse_sqrt_mu_eta(eta: np.ndarray) -> np.ndarray:
    positive = eta > 0
    return np.where(positive, -0.5 / np.where(positive, eta, 1.0) ** 1.5, np.nan)


LINKS: dict[str, Link] = {
    "logit": Link("logit", special.logit, _logit_inverse, _logit_mu_eta),
    "probit": Link(
        "probit",
        stats.norm.ppf,
        lambda eta: np.clip(stats.norm.cdf(eta), _EPS, 1 - _EPS),
        lambda eta: np.maximum(stats.norm.pdf(eta), _EPS),
    ),
    "cloglog": Link(
        "cloglog", lambda mu: np.log(-np.log1p(-mu)), _cloglog_inverse, _cloglog_mu_eta
    ),
    "log": Link(
        "log",
        np.log,
        lambda eta: np.maximum(np.exp(np.minimum(eta, 700.0)), _EPS),
        lambda eta: np.maximum(np.exp(np.minimum(eta, 700.0)), _EPS),
    ),
    "identity": Link("identity", lambda mu: mu, lambda eta: eta, np.ones_like),
    "inverse": Link(
        "inverse", lambda mu: 1.0 / mu, lambda eta: 1.0 / eta, lambda eta: -1.0 / eta**2
    ),
    "sqrt": Link("sqrt", np.sqrt, lambda eta: eta**2, lambda eta: 2.0 * eta),
    # the inverse Gaussian's canonical link, R's ``"1/mu^2"``
    "1/mu^2": Link("1/mu^2", lambda mu: 1.0 / mu**2, _inverse_sqrt, _inverse_sqrt_mu_eta),
}


def _link_named(name: str) -> Link:
    return LINKS[name]


@dataclass(frozen=True)
class Family:
    """A GLM family with its link.

    Attributes
    ----------
    name : str
    link : Link
    scale_free : bool
        True when the dispersion is fixed at 1 (binomial, poisson, negative binomial);
        False for Gamma and inverse Gaussian, whose dispersion is estimated.
    shape : float or None
        The negative binomial's shape (R's ``theta``).
    """

    name: str
    link: Link
    scale_free: bool = True
    shape: float | None = None

    @property
    def r_name(self) -> str:
        """The family's name as R prints it (``inverse.gaussian``)."""
        return {"inverse_gaussian": "inverse.gaussian"}.get(self.name, self.name)

    @property
    def aic_offset(self) -> float:
        """The constant R's ``family$aic`` adds for an estimated dispersion: 2 for Gamma,
        inverse Gaussian and gaussian, 0 for the others.  lme4's glmer objective keeps
        it (and its AIC then counts σ once more among the parameters)."""
        return 0.0 if self.scale_free else 2.0

    @property
    def observed_information_weights(self) -> bool:
        """The working weights equal the observed information (a canonical link with
        binomial or poisson): Newton and Fisher scoring coincide."""
        return (self.name, self.link.name) in {("binomial", "logit"), ("poisson", "log")}

    def variance(self, mu: np.ndarray) -> np.ndarray:
        if self.name == "binomial":
            return np.maximum(mu * (1.0 - mu), _EPS)
        if self.name == "poisson":
            return mu
        if self.name == "Gamma":
            return mu**2
        if self.name == "inverse_gaussian":
            return mu**3
        if self.name == "negative_binomial":
            return mu + mu**2 / self.shape
        return np.ones_like(mu)  # gaussian

    def deviance_residuals(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """R's ``family$dev.resids``: unit deviances times prior weights."""
        if self.name == "binomial":
            failures = 1.0 - y
            term0 = special.xlogy(failures, failures / (1.0 - mu))
            return 2.0 * wt * (special.xlogy(y, y / mu) + term0)
        if self.name == "poisson":
            return (
                2.0 * wt * (np.where(y > 0, y * np.log(np.maximum(y, _TINY) / mu), 0.0) - (y - mu))
            )
        if self.name in ("Gamma", "inverse_gaussian"):
            # μ ≤ 0 (an identity or inverse link overshooting) is outside the family:
            # an infinite deviance, so that PIRLS halves its step instead
            valid = mu > 0
            safe = np.where(valid, mu, 1.0)
            if self.name == "Gamma":
                unit = -2.0 * (np.log(np.where(y == 0, 1.0, y / safe)) - (y - safe) / safe)
            else:
                unit = (y - safe) ** 2 / (y * safe**2)
            return np.where(valid, wt * unit, np.inf)
        if self.name == "negative_binomial":
            k = self.shape
            term = np.where(y > 0, y * np.log(np.maximum(y, _TINY) / mu), 0.0)
            return 2.0 * wt * (term - (y + k) * np.log((y + k) / (mu + k)))
        return wt * (y - mu) ** 2

    def minus_two_loglik(
        self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray, deviance: float | None = None
    ) -> np.ndarray:
        """−2 log p(y | μ) per observation, as R's ``family$aic`` without the 2·npar and
        without the +2 R adds for a dispersion (:attr:`aic_offset`).

        Gamma, inverse Gaussian and gaussian take the dispersion as R's ``aic`` does:
        ``deviance / Σ wt``, the deviance at μ unless given.
        """
        if self.name == "binomial":
            trials = np.round(np.where(wt > 0, wt, 1.0))
            successes = np.round(trials * y)
            # log dbinom, written out: scipy.stats' per-call overhead dominates PIRLS
            log_choose = (
                special.gammaln(trials + 1)
                - special.gammaln(successes + 1)
                - special.gammaln(trials - successes + 1)
            )
            log_p = (
                log_choose + special.xlogy(successes, mu) + special.xlog1py(trials - successes, -mu)
            )
            return np.where(wt > 0, -2.0 * log_p, 0.0)
        if self.name == "poisson":
            return -2.0 * wt * stats.poisson.logpmf(y, mu)
        if self.name == "negative_binomial":
            return -2.0 * wt * stats.nbinom.logpmf(y, self.shape, self.shape / (self.shape + mu))
        n = max(float(np.sum(wt)), 1.0)
        if deviance is None:  # R's aic() takes the dispersion as deviance / n
            deviance = float(np.sum(self.deviance_residuals(y, mu, wt)))
        dispersion = max(deviance / n, _TINY)
        if self.name == "Gamma":
            shape = 1.0 / dispersion
            valid = mu > 0
            log_p = stats.gamma.logpdf(y, shape, scale=np.where(valid, mu, 1.0) / shape)
            return np.where(valid, -2.0 * wt * log_p, np.inf)
        if self.name == "inverse_gaussian":
            return wt * (np.log(dispersion * 2 * np.pi * y**3) + 1.0)
        return wt * (np.log(2 * np.pi * dispersion) + 1.0)

    def loglik_kernel(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> float | None:
        """Σ −2 log p(y | μ) up to a constant of y (no log-factorials), for the
        fixed-dispersion families; None for the others.  PIRLS compares and the Laplace
        deviance adds these sums, so the constant is computed once per model."""
        if self.name == "binomial":
            return -2.0 * float(wt * y @ np.log(mu) + wt * (1.0 - y) @ np.log1p(-mu))
        if self.name == "poisson":
            return 2.0 * float(np.sum(wt * mu) - wt * y @ np.log(mu))
        if self.name == "negative_binomial":
            k = self.shape
            return 2.0 * float(wt * (y + k) @ np.log(mu + k) - wt * y @ np.log(mu))
        return None

    def starting_mu(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """R's ``family$initialize`` mustart."""
        if self.name == "binomial":
            return (wt * y + 0.5) / (wt + 1.0)
        if self.name in ("poisson", "negative_binomial"):
            return y + 0.1
        if self.name in ("Gamma", "inverse_gaussian"):
            return np.maximum(y, _EPS)
        return y

    def check_response(self, y: np.ndarray, wt: np.ndarray) -> None:
        """Refuse responses outside the family's support, naming the problem."""
        if self.name == "binomial":
            if np.any((y < 0) | (y > 1)):
                raise DataError(
                    "A binomial response must be 0/1, proportions in [0, 1] (with weights= "
                    f"trials) or cbind(successes, failures); got values from {y.min():g} "
                    f"to {y.max():g}."
                )
            successes = y * wt
            if np.any(np.abs(successes - np.round(successes)) > 1e-7):
                raise DataError(
                    "Non-integer numbers of successes: proportion x weights must be whole "
                    "numbers. Pass the number of trials as weights=."
                )
        elif self.name in ("poisson", "negative_binomial"):
            if np.any(y < 0):
                raise DataError(
                    f"A {self.name} response must be non-negative counts; got {y.min():g}."
                )
            if np.any(np.abs(y - np.round(y)) > 1e-7):
                raise DataError(
                    f"A {self.name} response must be whole counts; got non-integer values."
                )
        elif self.name in ("Gamma", "inverse_gaussian"):
            if np.any(y <= 0):
                raise DataError(f"A {self.name} response must be positive; got {y.min():g}.")

    def with_shape(self, shape: float) -> Family:
        return Family(self.name, self.link, self.scale_free, shape)


_CANONICAL = {
    "binomial": "logit",
    "poisson": "log",
    "Gamma": "inverse",
    "inverse_gaussian": "1/mu^2",
    "negative_binomial": "log",
    "gaussian": "identity",
}
_ALIASES = {
    "gamma": "Gamma",
    "inverse.gaussian": "inverse_gaussian",
    "inverse_gaussian": "inverse_gaussian",
    "negative.binomial": "negative_binomial",
    "negative_binomial": "negative_binomial",
    "nb": "negative_binomial",
}


def get_family(family: str | Family, link: str | None = None) -> Family:
    """Look up a family by R's name (``"binomial"``, ``"poisson"``, ``"Gamma"``, ...)."""
    if isinstance(family, Family):
        return (
            family
            if link is None
            else Family(family.name, _get_link(link), family.scale_free, family.shape)
        )
    if not isinstance(family, str):
        raise OptionError(f"family must be a string. Got {type(family).__name__}.")
    name = _ALIASES.get(family, family)
    if name not in _CANONICAL:
        raise OptionError(f"family: expecting one of {sorted(_CANONICAL)}. Got {family!r}.")
    chosen = _get_link(link or _CANONICAL[name])
    scale_free = name in ("binomial", "poisson", "negative_binomial")
    return Family(name, chosen, scale_free, 1.0 if name == "negative_binomial" else None)


def _get_link(link: str) -> Link:
    if link not in LINKS:
        raise OptionError(f"link: expecting one of {sorted(LINKS)}. Got {link!r}.")
    return LINKS[link]
