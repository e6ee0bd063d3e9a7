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

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import special

from ..errors import DataError, OptionError
from ..lmm import _kernels
from ..lmm._kernels import HAVE_NUMBA

_EPS = np.finfo(float).eps
_TINY = 1e-300
_SQRT_2PI = np.sqrt(2.0 * np.pi)


def _stats():
    """scipy.stats, imported on first use (it costs ~1 s of import; only the log-densities
    of the poisson, negative binomial and Gamma families need it)."""
    from scipy import stats

    return stats


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
        special.ndtri,
        lambda eta: np.clip(special.ndtr(eta), _EPS, 1 - _EPS),
        lambda eta: np.maximum(np.exp(-0.5 * eta * eta) / _SQRT_2PI, _EPS),
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


def working_residual(y: np.ndarray, mu: np.ndarray, mu_eta: np.ndarray) -> np.ndarray:
    """The working residual (y − μ)·dη/dμ, with ``mu_eta`` = dμ/dη.

    Examples
    --------
    >>> working_residual(np.array([1.0]), np.array([0.5]), np.array([0.25]))
    array([2.])
    """
    return (y - mu) / mu_eta


def working_response(
    link: Link,
    y: np.ndarray,
    eta: np.ndarray,
    mu: np.ndarray,
    offset: np.ndarray | float = 0.0,
    mu_eta: np.ndarray | None = None,
) -> np.ndarray:
    """IRLS's (and PIRLS's) working response z = η − offset + (y − μ)·dη/dμ.

    The one place it is computed: PIRLS's steps, the GLM start, the gradient's and
    the final solution's cross-products, and the per-group GLM fits of the plots.

    Parameters
    ----------
    link : Link
        Gives dμ/dη at ``eta`` when ``mu_eta`` is not passed.
    y, eta, mu : ndarray
        The response, the linear predictor (offset included) and the mean g⁻¹(η).
    offset : ndarray or float
        Taken off η, so that z is the response of the offset-free linear predictor.
    mu_eta : ndarray, optional
        dμ/dη at ``eta`` when already computed (PIRLS's canonical links take V(μ)).

    Returns
    -------
    ndarray
    """
    if mu_eta is None:
        mu_eta = link.mu_eta(eta)
    return eta - offset + working_residual(y, mu, mu_eta)


@dataclass(frozen=True)
class Family:
    """A GLM family with its link: the base class of one subclass per family.

    Each subclass carries what depends on the distribution (variance function,
    deviances, log-likelihood, starting values, the response's support, simulated
    draws, its LaTeX form); no caller branches on :attr:`name`, which stays as data
    for printed output.

    Attributes
    ----------
    link : Link
    shape : float or None
        The negative binomial's shape (R's ``theta``); None for the other families.
    name : str
        The family's name (class attribute): ``"binomial"``, ``"poisson"``, ...
    r_name : str
        The family's name as R prints it (``inverse.gaussian``).
    scale_free : bool
        True when the dispersion is fixed at 1 (binomial, poisson, negative binomial);
        False for Gamma and inverse Gaussian, whose dispersion is estimated.
    estimated_shape : bool
        The family has a shape that glmer.nb estimates (the negative binomial).
    proportion_response : bool
        The response is a proportion of trials: 0/1 or a two-level factor, proportions
        with ``weights=`` trials, or ``cbind(successes, failures)``; such fits can be
        separated.
    positive_mean : bool
        The mean must be positive (counts and positive responses): a linear predictor
        whose inverse link gives μ ≤ 0 has no valid mean.
    mean_name : str
        emmeans' name of the response-scale mean (``prob``, ``rate``, ``response``).
    """

    link: Link
    shape: float | None = None

    name: ClassVar[str] = "gaussian"
    r_name: ClassVar[str] = "gaussian"
    scale_free: ClassVar[bool] = False
    estimated_shape: ClassVar[bool] = False
    proportion_response: ClassVar[bool] = False
    positive_mean: ClassVar[bool] = False
    mean_name: ClassVar[str] = "response"

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
        return False

    def variance(self, mu: np.ndarray) -> np.ndarray:
        """The variance function V(μ)."""
        return np.ones_like(mu)

    def variance_derivative(self, mu: np.ndarray) -> np.ndarray:
        """V′(μ), which with a canonical link gives the working weights' dw/dη = w·V′(μ)."""
        return np.zeros_like(mu)

    def deviance_residuals(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """R's ``family$dev.resids``: unit deviances times prior weights."""
        return wt * (y - mu) ** 2

    def minus_two_loglik(
        self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray, deviance: float | None = None
    ) -> np.ndarray:
        """−2 log p(y | μ) per observation, as R's ``family$aic`` without the 2·npar and
        without the +2 R adds for a dispersion (:attr:`aic_offset`).

        Gamma, inverse Gaussian and gaussian take the dispersion as R's ``aic`` does:
        ``deviance / Σ wt``, the deviance at μ unless given.
        """
        dispersion = self._aic_dispersion(y, mu, wt, deviance)
        return wt * (np.log(2 * np.pi * dispersion) + 1.0)

    def _aic_dispersion(
        self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray, deviance: float | None
    ) -> float:
        """R's aic() dispersion: the deviance (at μ unless given) over Σ wt."""
        n = max(float(np.sum(wt)), 1.0)
        if deviance is None:
            deviance = float(np.sum(self.deviance_residuals(y, mu, wt)))
        return max(deviance / n, _TINY)

    def loglik_kernel(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> float | None:
        """Σ −2 log p(y | μ) up to a constant of y (no log-factorials), for the
        fixed-dispersion families; None for the others.  PIRLS compares and the Laplace
        deviance adds these sums, so the constant is computed once per model."""
        return None

    def starting_mu(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """R's ``family$initialize`` mustart."""
        return y

    def check_response(self, y: np.ndarray, wt: np.ndarray) -> None:
        """Refuse responses outside the family's support, naming the problem."""

    def draw(
        self, rng: np.random.Generator, mu: np.ndarray, wt: np.ndarray, sigma: float
    ) -> np.ndarray:
        """One simulated response per row with mean ``mu``, prior weights ``wt`` and
        dispersion ``sigma``² (the families that have one), as R's ``simulate``."""
        raise OptionError(f"simulate() has no draws for the {self.name} family.")

    def latex_distribution(
        self, response: str, success: str, dispersion: float
    ) -> tuple[str, str] | None:
        """equatiomatic's distribution of the response: its LaTeX (after ``\\sim``) and
        the symbol of the mean; None when equatiomatic has no form.  ``success`` is the
        success level's subscript text (binomial), ``dispersion`` lme4's σ²."""
        return None

    def distribution_variance(self, null_mean: Callable[[], float]) -> float | None:
        """Nakagawa's distribution-specific variance on the link scale, as performance's
        ``r2()`` of a GLMM; ``null_mean`` gives the intercept-only model's mean when the
        variance needs it.  None when there is none for this family and link."""
        return None

    def with_shape(self, shape: float) -> Family:
        """The same family with another shape (the negative binomial's theta)."""
        return dataclasses.replace(self, shape=shape)


@dataclass(frozen=True)
class Gaussian(Family):
    """The gaussian family (which glmer refuses: lmer fits it)."""


@dataclass(frozen=True)
class Binomial(Family):
    """The binomial family: a proportion of trials, V(μ) = μ(1 − μ)."""

    name: ClassVar[str] = "binomial"
    r_name: ClassVar[str] = "binomial"
    scale_free: ClassVar[bool] = True
    proportion_response: ClassVar[bool] = True
    mean_name: ClassVar[str] = "prob"

    @property
    def observed_information_weights(self) -> bool:
        return self.link.name == "logit"

    def variance(self, mu: np.ndarray) -> np.ndarray:
        return np.maximum(mu * (1.0 - mu), _EPS)

    def variance_derivative(self, mu: np.ndarray) -> np.ndarray:
        return 1.0 - 2.0 * mu

    def deviance_residuals(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> np.ndarray:
        failures = 1.0 - y
        term0 = special.xlogy(failures, failures / (1.0 - mu))
        return 2.0 * wt * (special.xlogy(y, y / mu) + term0)

    def minus_two_loglik(
        self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray, deviance: float | None = None
    ) -> np.ndarray:
        trials = np.round(np.where(wt > 0, wt, 1.0))
        successes = np.round(trials * y)
        # log dbinom, written out: scipy.stats' per-call overhead dominates PIRLS
        log_choose = (
            special.gammaln(trials + 1)
            - special.gammaln(successes + 1)
            - special.gammaln(trials - successes + 1)
        )
        log_p = log_choose + special.xlogy(successes, mu) + special.xlog1py(trials - successes, -mu)
        return np.where(wt > 0, -2.0 * log_p, 0.0)

    def loglik_kernel(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> float | None:
        return -2.0 * float(wt * y @ np.log(mu) + wt * (1.0 - y) @ np.log1p(-mu))

    def starting_mu(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        return (wt * y + 0.5) / (wt + 1.0)

    def check_response(self, y: np.ndarray, wt: np.ndarray) -> None:
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

    def draw(
        self, rng: np.random.Generator, mu: np.ndarray, wt: np.ndarray, sigma: float
    ) -> np.ndarray:
        trials = np.maximum(np.round(wt), 1)
        return rng.binomial(trials.astype(int), mu) / trials

    def latex_distribution(
        self, response: str, success: str, dispersion: float
    ) -> tuple[str, str] | None:
        text = (
            "\\operatorname{Binomial}(n = 1, "
            f"\\operatorname{{prob}}_{{{response}{success}}} = \\widehat{{P}})"
        )
        return text, "P"

    def distribution_variance(self, null_mean: Callable[[], float]) -> float | None:
        values = {"logit": np.pi**2 / 3, "probit": 1.0, "cloglog": np.pi**2 / 6}
        link = self.link.name
        if link not in values:
            raise DataError(
                f"r2() has no distribution-specific variance for the binomial {link} link "
                "(performance has them for logit, probit and cloglog)."
            )
        return float(values[link])


def _check_counts(family: Family, y: np.ndarray) -> None:
    if np.any(y < 0):
        raise DataError(f"A {family.name} response must be non-negative counts; got {y.min():g}.")
    if np.any(np.abs(y - np.round(y)) > 1e-7):
        raise DataError(f"A {family.name} response must be whole counts; got non-integer values.")


@dataclass(frozen=True)
class Poisson(Family):
    """The Poisson family: counts, V(μ) = μ."""

    name: ClassVar[str] = "poisson"
    r_name: ClassVar[str] = "poisson"
    scale_free: ClassVar[bool] = True
    positive_mean: ClassVar[bool] = True
    mean_name: ClassVar[str] = "rate"

    @property
    def observed_information_weights(self) -> bool:
        return self.link.name == "log"

    def variance(self, mu: np.ndarray) -> np.ndarray:
        return mu

    def variance_derivative(self, mu: np.ndarray) -> np.ndarray:
        return np.ones_like(mu)

    def deviance_residuals(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> np.ndarray:
        return 2.0 * wt * (np.where(y > 0, y * np.log(np.maximum(y, _TINY) / mu), 0.0) - (y - mu))

    def minus_two_loglik(
        self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray, deviance: float | None = None
    ) -> np.ndarray:
        return -2.0 * wt * _stats().poisson.logpmf(y, mu)

    def loglik_kernel(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> float | None:
        return 2.0 * float(np.sum(wt * mu) - wt * y @ np.log(mu))

    def starting_mu(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        return y + 0.1

    def check_response(self, y: np.ndarray, wt: np.ndarray) -> None:
        _check_counts(self, y)

    def draw(
        self, rng: np.random.Generator, mu: np.ndarray, wt: np.ndarray, sigma: float
    ) -> np.ndarray:
        return rng.poisson(mu)

    def latex_distribution(
        self, response: str, success: str, dispersion: float
    ) -> tuple[str, str] | None:
        return "\\operatorname{Poisson}(\\lambda_{i})", "\\lambda_{i}"

    def distribution_variance(self, null_mean: Callable[[], float]) -> float | None:
        if self.link.name == "sqrt":
            return 0.25
        if self.link.name == "log":
            return float(np.log1p(1.0 / null_mean()))
        return None


@dataclass(frozen=True)
class NegativeBinomial(Family):
    """The negative binomial family with shape θ: counts, V(μ) = μ + μ²/θ."""

    shape: float | None = 1.0

    name: ClassVar[str] = "negative_binomial"
    r_name: ClassVar[str] = "negative_binomial"
    scale_free: ClassVar[bool] = True
    estimated_shape: ClassVar[bool] = True
    positive_mean: ClassVar[bool] = True
    mean_name: ClassVar[str] = "rate"

    def variance(self, mu: np.ndarray) -> np.ndarray:
        return mu + mu**2 / self.shape

    def variance_derivative(self, mu: np.ndarray) -> np.ndarray:
        return 1.0 + 2.0 * mu / self.shape

    def deviance_residuals(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> np.ndarray:
        k = self.shape
        term = np.where(y > 0, y * np.log(np.maximum(y, _TINY) / mu), 0.0)
        return 2.0 * wt * (term - (y + k) * np.log((y + k) / (mu + k)))

    def minus_two_loglik(
        self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray, deviance: float | None = None
    ) -> np.ndarray:
        return -2.0 * wt * _stats().nbinom.logpmf(y, self.shape, self.shape / (self.shape + mu))

    def loglik_kernel(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> float | None:
        k = self.shape
        return 2.0 * float(wt * (y + k) @ np.log(mu + k) - wt * y @ np.log(mu))

    def starting_mu(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        return y + 0.1

    def check_response(self, y: np.ndarray, wt: np.ndarray) -> None:
        _check_counts(self, y)

    def draw(
        self, rng: np.random.Generator, mu: np.ndarray, wt: np.ndarray, sigma: float
    ) -> np.ndarray:
        k = self.shape
        return rng.negative_binomial(k, k / (k + mu))

    def latex_distribution(
        self, response: str, success: str, dispersion: float
    ) -> tuple[str, str] | None:
        text = f"\\operatorname{{NegBinomial}}(\\lambda_{{i}}, \\theta = {self.shape:.3g})"
        return text, "\\lambda_{i}"


@dataclass(frozen=True)
class _PositiveResponse(Family):
    """Gamma and inverse Gaussian: a positive response with an estimated dispersion."""

    positive_mean: ClassVar[bool] = True
    latex_name: ClassVar[str] = ""

    def _unit_deviance(self, y: np.ndarray, mu: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def deviance_residuals(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> np.ndarray:
        # μ ≤ 0 (an identity or inverse link overshooting) is outside the family:
        # an infinite deviance, so that PIRLS halves its step instead
        valid = mu > 0
        unit = self._unit_deviance(y, np.where(valid, mu, 1.0))
        return np.where(valid, wt * unit, np.inf)

    def starting_mu(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        return np.maximum(y, _EPS)

    def check_response(self, y: np.ndarray, wt: np.ndarray) -> None:
        if np.any(y <= 0):
            raise DataError(f"A {self.name} response must be positive; got {y.min():g}.")

    def _draw_positive(
        self, rng: np.random.Generator, mu: np.ndarray, shape: np.ndarray
    ) -> np.ndarray:
        raise NotImplementedError

    def draw(
        self, rng: np.random.Generator, mu: np.ndarray, wt: np.ndarray, sigma: float
    ) -> np.ndarray:
        # an inverse or 1/mu^2 link can give μ ≤ 0 with new random effects: NaN,
        # as R's rgamma/rinvgauss
        shape = wt / sigma**2
        valid = np.isfinite(mu) & (mu > 0)
        draws = np.full(mu.shape, np.nan)
        draws[valid] = self._draw_positive(rng, mu[valid], shape[valid])
        return draws

    def latex_distribution(
        self, response: str, success: str, dispersion: float
    ) -> tuple[str, str] | None:
        # the mean and lme4's dispersion σ² (1/shape for Gamma)
        text = f"\\operatorname{{{self.latex_name}}}(\\mu_{{i}}, \\sigma^{{2}} = {dispersion:.3g})"
        return text, "\\mu_{i}"


@dataclass(frozen=True)
class Gamma(_PositiveResponse):
    """The Gamma family: a positive response, V(μ) = μ²."""

    name: ClassVar[str] = "Gamma"
    r_name: ClassVar[str] = "Gamma"
    latex_name: ClassVar[str] = "Gamma"

    def variance(self, mu: np.ndarray) -> np.ndarray:
        return mu**2

    def variance_derivative(self, mu: np.ndarray) -> np.ndarray:
        return 2.0 * mu

    def _unit_deviance(self, y: np.ndarray, mu: np.ndarray) -> np.ndarray:
        return -2.0 * (np.log(np.where(y == 0, 1.0, y / mu)) - (y - mu) / mu)

    def minus_two_loglik(
        self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray, deviance: float | None = None
    ) -> np.ndarray:
        shape = 1.0 / self._aic_dispersion(y, mu, wt, deviance)
        valid = mu > 0
        log_p = _stats().gamma.logpdf(y, shape, scale=np.where(valid, mu, 1.0) / shape)
        return np.where(valid, -2.0 * wt * log_p, np.inf)

    def _draw_positive(
        self, rng: np.random.Generator, mu: np.ndarray, shape: np.ndarray
    ) -> np.ndarray:
        return rng.gamma(shape, mu / shape)


@dataclass(frozen=True)
class InverseGaussian(_PositiveResponse):
    """The inverse Gaussian family: a positive response, V(μ) = μ³."""

    name: ClassVar[str] = "inverse_gaussian"
    r_name: ClassVar[str] = "inverse.gaussian"
    latex_name: ClassVar[str] = "InverseGaussian"

    def variance(self, mu: np.ndarray) -> np.ndarray:
        return mu**3

    def variance_derivative(self, mu: np.ndarray) -> np.ndarray:
        return 3.0 * mu**2

    def _unit_deviance(self, y: np.ndarray, mu: np.ndarray) -> np.ndarray:
        return (y - mu) ** 2 / (y * mu**2)

    def minus_two_loglik(
        self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray, deviance: float | None = None
    ) -> np.ndarray:
        dispersion = self._aic_dispersion(y, mu, wt, deviance)
        return wt * (np.log(dispersion * 2 * np.pi * y**3) + 1.0)

    def _draw_positive(
        self, rng: np.random.Generator, mu: np.ndarray, shape: np.ndarray
    ) -> np.ndarray:
        return rng.wald(mu, shape)


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
_FAMILIES: dict[str, type[Family]] = {
    family.name: family
    for family in (Binomial, Poisson, Gamma, InverseGaussian, NegativeBinomial, Gaussian)
}


def get_family(family: str | Family, link: str | None = None) -> Family:
    """Look up a family by R's name (``"binomial"``, ``"poisson"``, ``"Gamma"``, ...)."""
    if isinstance(family, Family):
        return family if link is None else dataclasses.replace(family, link=_get_link(link))
    if not isinstance(family, str):
        raise OptionError(f"family must be a string. Got {type(family).__name__}.")
    name = _ALIASES.get(family, family)
    if name not in _CANONICAL:
        raise OptionError(f"family: expecting one of {sorted(_CANONICAL)}. Got {family!r}.")
    return _FAMILIES[name](_get_link(link or _CANONICAL[name]))


def _get_link(link: str) -> Link:
    if link not in LINKS:
        raise OptionError(f"link: expecting one of {sorted(LINKS)}. Got {link!r}.")
    return LINKS[link]
