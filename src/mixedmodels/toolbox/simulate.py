"""Simulation intervals of fitted mixed models, as merTools' ``REsim`` and ``predictInterval``.

``predict_interval`` draws what merTools (0.5) ``predictInterval`` draws:

* random effects: for every level, from the conditional distribution of its random effects,
  a normal with the conditional mode as mean and the conditional covariance
  (lme4's ``condVar``/``postVar``, σ² included) as covariance;
* fixed effects: from their sampling distribution N(β̂, vcov(β̂));
* residual SD (with ``include_resid_var``): σ ~ sqrt(1 / Gamma(shape = df/2, rate =
  pwrss/2)) with df = n − (p + #θ + 1), then one normal residual per draw.

``resim`` draws the random effects from the same conditional distribution. merTools'
``REsim`` goes through ``arm::sim``, which draws (b, β) jointly with a drawn σ, so its SDs
also carry the fixed effects' uncertainty (0.0932 against lme4's conditional 0.0917 for the
seed's student intercepts); ours are lme4's conditional SDs up to Monte Carlo error.

For a GLMM (:func:`mixedmodels.glmer`) ``predict_interval`` is merTools'
``predictInterval(type = "probability", include.resid.var = FALSE)``: β and b are drawn
as above on the link scale and the interval is that of the mean μ = g⁻¹(η) on the
response scale.  merTools' default for a binomial glmer adds N(0, 1) noise to η ("sigma
set at 1"), which is no quantity of the model; it is not drawn here.  The same draws
serve every family (poisson, negative binomial, Gamma, inverse Gaussian, binomial with
trials): they are draws of the mean, whose distribution does not involve the response's.

Vectorized over levels and draws; no Python loop over rows or levels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np
import pandas as pd

from .._progress import progress_bar
from .._protocols import GeneralizedMixedModel
from .._warnings import warn
from ..frontend.columns import as_dataframe

if TYPE_CHECKING:  # pragma: no cover
    from .._protocols import MixedModel as LinearMixedModel

Which = Literal["full", "fixed", "random"]
Stat = Literal["median", "mean"]
Scale = Literal["response", "link"]

# Draws kept in memory at once (levels x draws x effects); larger jobs are done in chunks.
_CHUNK_ELEMENTS = 4_000_000


def _choice(name: str, value: Any, options: Any) -> None:
    allowed = get_args(options)
    if value not in allowed:
        raise ValueError(f"{name}: expecting one of {set(allowed)}. Got {value!r}.")


def _check_nsim(nsim: Any) -> int:
    if isinstance(nsim, bool) or not isinstance(nsim, (int, np.integer)) or nsim < 2:
        raise ValueError(f"nsim: expecting an integer of at least 2. Got {nsim!r}.")
    return int(nsim)


def _psd_factor(cov: np.ndarray) -> np.ndarray:
    """A square root F (F Fᵀ = cov) of a stack of PSD matrices, safe for singular ones.

    The Cholesky factor would fail for a zero variance (singular fit); the symmetric square
    root from the eigendecomposition does not, and gives draws with the same distribution.
    """
    values, vectors = np.linalg.eigh(cov)
    return vectors * np.sqrt(np.clip(values, 0.0, None))[..., None, :]


def _draw_effects(
    rng: np.random.Generator, modes: np.ndarray, cov: np.ndarray, nsim: int
) -> np.ndarray:
    """Draws (nsim, levels, k) from N(modes[l], cov[l]) for every level l."""
    factor = _psd_factor(cov)
    z = rng.standard_normal((nsim, *modes.shape))
    return modes[None] + np.einsum("lkj,slj->slk", factor, z)


def resim(model: LinearMixedModel, nsim: int = 1000, seed: Any = None) -> pd.DataFrame:
    """Summaries of draws from the conditional distribution of the random effects.

    The counterpart of merTools' ``REsim``: for every grouping factor, level and effect, the
    mean, median and SD of ``nsim`` draws from the conditional (posterior) normal distribution
    of the random effects given the data and the estimated parameters.

    Parameters
    ----------
    model : LinearMixedModel
    nsim : int
        Number of draws per level.
    seed : int or numpy.random.Generator, optional
        Seed for :func:`numpy.random.default_rng`; the same seed gives the same table.

    Returns
    -------
    DataFrame
        Columns ``group_var, effect, group, mean, median, sd``, in the row order of
        :meth:`LinearMixedModel.random_effects`.

    Examples
    --------
    >>> import mixedmodels as mm
    >>> m = mm.lmer("gpa ~ occasion + (1 | student)", mm.datasets.gpa(seed=1))
    >>> table = m.resim(nsim=200, seed=1)
    >>> table.columns.tolist()
    ['group_var', 'effect', 'group', 'mean', 'median', 'sd']
    >>> len(table) == len(m.random_effects())
    True
    """
    nsim = _check_nsim(nsim)
    rng = np.random.default_rng(seed)
    solution = model._solution
    frames = []
    for label, term, modes, cov in zip(
        model._group_labels(), model.crossprods.terms, solution.b, solution.b_cov, strict=True
    ):
        ell, k = modes.shape
        chunk = max(1, _CHUNK_ELEMENTS // (nsim * k))
        stats = {name: np.empty((ell, k)) for name in ("mean", "median", "sd")}
        for start in range(0, ell, chunk):
            part = slice(start, min(ell, start + chunk))
            draws = _draw_effects(rng, modes[part], cov[part], nsim)
            stats["mean"][part] = draws.mean(axis=0)
            stats["median"][part] = np.median(draws, axis=0)
            stats["sd"][part] = draws.std(axis=0, ddof=1)
        for j, column in enumerate(term.columns):
            frames.append(
                pd.DataFrame(
                    {
                        "group_var": label,
                        "effect": "Intercept" if column == "(Intercept)" else column,
                        "group": term.levels,
                        "mean": stats["mean"][:, j],
                        "median": stats["median"][:, j],
                        "sd": stats["sd"][:, j],
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def _term_rows(model: LinearMixedModel, frame: pd.DataFrame | None) -> list[tuple]:
    """Per term: (model matrix, level index per row with -1 for unseen levels)."""
    out = []
    for term in model.crossprods.terms:
        if frame is None:
            out.append((term.matrix, term.codes))
            continue
        out.append(term.encode_rows(frame))
    return out


def predict_interval(
    model: LinearMixedModel,
    newdata: Any = None,
    level: float = 0.95,
    nsim: int = 1000,
    which: Which = "full",
    include_resid_var: bool | None = None,
    stat: Stat = "median",
    seed: Any = None,
    type: Scale = "response",
    progress: bool | None = None,
) -> pd.DataFrame:
    """Prediction intervals by simulation, as merTools' ``predictInterval``.

    Each of ``nsim`` draws combines fixed effects from N(β̂, vcov(β̂)), random effects from
    their conditional distribution and (with ``include_resid_var``) a residual with a drawn
    σ; the interval is the quantiles of the draws. The variance parameters θ are held at
    their estimates, as in merTools. Levels of a grouping factor not seen in the fit get no
    random effect (merTools warns and does the same).

    For a GLMM the draws are of the linear predictor η and the interval is for the mean
    μ = g⁻¹(η) on the response scale (probabilities for binomial, rates for poisson), as
    merTools' ``type = "probability"`` without its N(0, 1) link-scale noise; ``type="link"``
    gives the interval for η.  A GLMM has no Gaussian residual: ``include_resid_var=True``
    is refused there (new observations are drawn by :meth:`simulate`).  Draws of η for
    which an inverse or ``1/mu^2`` link gives no valid mean (η ≤ 0) leave that row NaN,
    with a warning.

    Parameters
    ----------
    model : LinearMixedModel or GeneralizedLinearMixedModel
    newdata : DataFrame, optional
        Rows to predict; the fitted rows when omitted.
    level : float
        Coverage of the interval (merTools' default is 0.8; ours 0.95).
    nsim : int
        Number of draws.
    which : {"full", "fixed", "random"}
        Simulate the whole linear predictor, only its fixed part or only its random part.
    include_resid_var : bool, optional
        Add residual noise, for an interval for new observations rather than for the mean.
        The default is True for a linear mixed model (merTools' default) and False for a
        GLMM, where True is refused.
    stat : {"median", "mean"}
        How ``fit`` summarises the draws (for a GLMM, the draws of μ, or of η with
        ``type="link"``; merTools maps the mean of η through g⁻¹ instead).
    seed : int or numpy.random.Generator, optional
    type : {"response", "link"}
        The scale of a GLMM's interval; a linear mixed model has only one scale.
    progress : bool, optional
        A progress bar over the rows' random-effect draws; by default shown in a terminal
        or a notebook only.

    Returns
    -------
    DataFrame
        Columns ``fit, lower, upper``, one row per row of ``newdata``.

    Examples
    --------
    >>> import mixedmodels as mm
    >>> data = mm.datasets.gpa(seed=1)
    >>> m = mm.lmer("gpa ~ occasion + (1 | student)", data)
    >>> pi = m.predict_interval(nsim=200, seed=1)
    >>> pi.columns.tolist()
    ['fit', 'lower', 'upper']
    >>> bool(((pi["lower"] <= data["gpa"]) & (data["gpa"] <= pi["upper"])).mean() > 0.9)
    True

    A binomial GLMM's intervals are probabilities:

    >>> dates = mm.datasets.speed_dating(seed=1, n_raters=60, dates_per_rater=10)
    >>> g = mm.glmer("decision ~ attractive_sc + (1 | iid)", dates, family="binomial")
    >>> pi = g.predict_interval(nsim=200, seed=1)
    >>> bool(((0 < pi["lower"]) & (pi["lower"] < pi["fit"]) & (pi["upper"] < 1)).all())
    True
    """
    _choice("which", which, Which)
    _choice("stat", stat, Stat)
    _choice("type", type, Scale)
    nsim = _check_nsim(nsim)
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level: expecting a number between 0 and 1. Got {level!r}.")
    family = model.family if isinstance(model, GeneralizedMixedModel) else None
    include_resid_var = _include_resid_var(include_resid_var, family)
    rng = np.random.default_rng(seed)
    frame = None if newdata is None else as_dataframe(newdata)
    n = model.nobs if frame is None else len(frame)
    sigma = _draw_sigma(rng, model, nsim) if include_resid_var else None
    yhat = np.zeros((n, nsim))
    if which in ("full", "random"):
        _add_random_part(yhat, rng, model, frame, nsim, progress)
    if which in ("full", "fixed"):
        _add_fixed_part(yhat, rng, model, frame, nsim)
    if sigma is not None:
        yhat += rng.standard_normal((n, nsim)) * sigma[None, :]
    if family is not None and type == "response":
        yhat = _response_scale(family, yhat)
    return _summarise_draws(yhat, level, stat, frame)


def _draw_sigma(rng: np.random.Generator, model: Any, nsim: int) -> np.ndarray:
    """σ draws, as merTools: 1/σ² ~ Gamma(df/2, rate = pwrss/2), df = n − #parameters."""
    df = model.nobs - model.npar
    return np.sqrt(1.0 / rng.gamma(0.5 * df, 2.0 / model._solution.pwrss, size=nsim))


def _summarise_draws(
    yhat: np.ndarray, level: float, stat: str, frame: pd.DataFrame | None
) -> pd.DataFrame:
    """``fit`` (median or mean of the draws), ``lower`` and ``upper`` (their quantiles)."""
    alpha = (1.0 - float(level)) / 2.0
    lower, middle, upper = np.quantile(yhat, [alpha, 0.5, 1.0 - alpha], axis=1)
    fit = middle if stat == "median" else yhat.mean(axis=1)
    index = frame.index if frame is not None else None
    return pd.DataFrame({"fit": fit, "lower": lower, "upper": upper}, index=index)


def _include_resid_var(include_resid_var: bool | None, family: Any) -> bool:
    """Whether to add residual noise: by default for a linear mixed model only; refused
    for a GLMM, which has no Gaussian residual."""
    if include_resid_var is None:
        return family is None
    if include_resid_var and family is not None:
        from ..errors import refuse

        raise refuse(
            f"{family.r_name} glmer fit",
            "predict_interval(include_resid_var=True)",
            "include_resid_var=False (the default: the interval of the mean), or simulate() "
            "for new responses",
            f"a {family.r_name} GLMM has no Gaussian residual to add to its linear predictor",
        )
    return bool(include_resid_var)


def _add_random_part(
    yhat: np.ndarray,
    rng: np.random.Generator,
    model: Any,
    frame: pd.DataFrame | None,
    nsim: int,
    progress: bool | None,
) -> None:
    """Add draws of every term's random effects from their conditional distribution to
    ``yhat`` (rows x draws); levels the fit did not see get none."""
    solution = model._solution
    terms = _term_rows(model, frame)
    total = sum(int(np.count_nonzero(codes >= 0)) for _, codes in terms)
    bar = progress_bar(progress, total=total, desc="predict_interval", unit="row")
    with bar:
        for (matrix, codes), modes, cov in zip(terms, solution.b, solution.b_cov, strict=True):
            used = np.unique(codes[codes >= 0])
            if used.size == 0:
                continue
            draws = _draw_effects(rng, modes[used], cov[used], nsim)  # (nsim, used, k)
            position = np.full(modes.shape[0], -1)
            position[used] = np.arange(used.size)
            known = np.flatnonzero(codes >= 0)
            step = max(1, _CHUNK_ELEMENTS // (nsim * matrix.shape[1]))
            for start in range(0, known.size, step):
                rows = known[start : start + step]
                yhat[rows] += np.einsum(
                    "nk,snk->ns", matrix[rows], draws[:, position[codes[rows]], :]
                )
                bar.update(rows.size)


def _add_fixed_part(
    yhat: np.ndarray, rng: np.random.Generator, model: Any, frame: pd.DataFrame | None, nsim: int
) -> None:
    """Add draws of the fixed part, β from N(β̂, vcov(β̂)), and the offset to ``yhat``."""
    X = model.design.X if frame is None else model.design.encode_fixed(frame)
    # new rows carry the fit's offset too, as predict(newdata) does
    offset = model.design.offset if frame is None else model.design.encode_offset(frame)
    beta = rng.multivariate_normal(
        model._solution.beta, model.vcov.to_numpy(), size=nsim, method="cholesky"
    )
    yhat += X @ beta.T
    if offset is not None:
        yhat += offset[:, None]


def _response_scale(family: Any, eta: np.ndarray) -> np.ndarray:
    """Draws of the mean g⁻¹(η); rows with a draw that has no valid mean become NaN.

    Quantiles are taken of these draws rather than mapped through g⁻¹, which holds for
    links that are not increasing (inverse, ``1/mu^2``) or not monotone (sqrt).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = family.link.inverse(eta)
    valid = np.isfinite(mu)
    if family.positive_mean:
        valid &= mu > 0
    bad_rows = ~valid.all(axis=1)
    if bad_rows.any():
        warn(
            f"predict_interval: {int(bad_rows.sum())} of {mu.shape[0]} rows have draws of the "
            f"linear predictor with no valid mean under the {family.link.name} link "
            f"({int((~valid).sum())} of {valid.size} draws); their intervals are NaN. A log "
            "link keeps every draw valid.",
            RuntimeWarning,
        )
        mu = np.where(bad_rows[:, None], np.nan, mu)
    return mu


def _residual_draws(model: Any, rng: np.random.Generator, nsim: int) -> np.ndarray:
    """(nsim, n) residuals with covariance σ²R: independent σ²/w, or nlme's R = D C D."""
    n = model.nobs
    sigma = float(model.sigma)
    z = rng.standard_normal((nsim, n))
    structure = getattr(model, "residual_structure", None)
    if structure is None:
        weights = model.design.weights
        return sigma * (z if weights is None else z / np.sqrt(weights))
    params = model.residual_params
    sd = np.exp(structure.log_sd(params, n))
    correlation = structure.correlation
    if correlation is None:
        return sigma * sd * z
    # C is block diagonal over correlation groups: one batched Cholesky per group size
    corr_params = structure._split(params)[1]
    codes = np.unique(correlation.groups, return_inverse=True)[1].ravel()
    order = np.argsort(codes, kind="stable")
    groups = codes[order]
    starts = np.r_[0, np.flatnonzero(np.diff(groups)) + 1]
    sizes = np.diff(np.r_[starts, n])
    out = np.empty_like(z)
    for size in np.unique(sizes):
        first = starts[sizes == size]
        rows = order[first[:, None] + np.arange(size)[None, :]]  # (groups, size)
        i = np.repeat(rows, size, axis=1).ravel()
        j = np.tile(rows, (1, size)).ravel()
        C = correlation.pair_correlation(corr_params, i, j).reshape(len(first), size, size)
        C[:, np.arange(size), np.arange(size)] = 1.0
        factor = np.linalg.cholesky(C)
        out[:, rows] = np.einsum("gab,sgb->sga", factor, z[:, rows])
    return sigma * sd * out


def simulate(model: Any, nsim: int = 1, seed: Any = None, re_form: Any = "~0") -> np.ndarray:
    """Responses simulated from a fitted linear (mixed) model, as lme4's ``simulate``.

    Parameters
    ----------
    model : LinearMixedModel or LinearModel
    nsim : int
        Number of simulated responses.
    seed : int or numpy.random.Generator, optional
    re_form : str or None
        Random-effects terms to condition on (kept at their conditional modes); the
        others are drawn anew as Λu with u ~ N(0, σ²I).  ``"~0"`` (the default, lme4's
        ``re.form = NA``) draws every term; ``None`` (lme4's ``re.form = NULL``) keeps
        them all, so only the residuals vary.

    Returns
    -------
    ndarray of shape (n, nsim)
        One simulated response per column, as R's data frame.  Residuals have the
        fit's residual structure (prior weights, variance functions and correlations).

    Examples
    --------
    >>> import mixedmodels as mm
    >>> m = mm.lmer("gpa ~ occasion + (1 | student)", mm.datasets.gpa(seed=1))
    >>> m.simulate(3, seed=1).shape
    (1200, 3)
    """
    if isinstance(nsim, bool) or not isinstance(nsim, (int, np.integer)) or nsim < 1:
        raise ValueError(f"nsim: expecting a positive integer. Got {nsim!r}.")
    rng = np.random.default_rng(seed)
    design = model.design
    mean = design.X @ model.fixef.to_numpy()
    if design.offset is not None:
        mean = mean + design.offset
    y = np.repeat(mean[None, :], nsim, axis=0)
    if hasattr(model, "crossprods"):
        kept = model._selected_terms(re_form) if re_form is not None else None
        if kept is None:
            kept = list(range(len(model.crossprods.terms)))
        y += model._random_part(None, kept)[None, :]
        sigma = float(model.sigma)
        factors = model.crossprods.factors(model.theta)
        for index, (term, T) in enumerate(zip(model.crossprods.terms, factors, strict=True)):
            if index in kept:
                continue
            b = sigma * rng.standard_normal((nsim, term.n_levels, term.n_columns)) @ T.T
            y += np.einsum("nk,snk->sn", term.matrix, b[:, term.codes, :])
    return (y + _residual_draws(model, rng, int(nsim))).T
