"""Plots of fitted mixed models, one call each (the seed chapter's ggplots, in matplotlib).

Reached through ``m.plot``: :meth:`PlotAccessor.caterpillar`, :meth:`~PlotAccessor.shrinkage`,
:meth:`~PlotAccessor.fitted`, :meth:`~PlotAccessor.marginal_cov`,
:meth:`~PlotAccessor.residuals` and :meth:`~PlotAccessor.profile`. Every method returns a
:class:`matplotlib.figure.Figure` built without pyplot's global state (so nothing pops up and
nothing leaks between calls); show it in a notebook by leaving it as the cell's value, or save it
with ``fig.savefig(path)``. All share one quiet style: light grid, no top/right spines, one
accent colour for what matters (significant effects, the mixed model) and grey for the rest.

This module reads fitted results only; the numerics never import it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import DataError, MixedModelsError
from ..glmm.families import working_response

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .._protocols import MixedModel as LinearMixedModel

#: the seed's palette: accent (clr2), muted grey (clr0d), a second colour (clr1), light fill
ACCENT = "#B35136"
MUTED = "#8F8F8F"
SECOND = "#3D6E8F"
LIGHT = "#E3E3E3"

_RC = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#555555",
    "axes.grid": True,
    "grid.color": "#EBEBEB",
    "grid.linewidth": 0.6,
    "xtick.color": "#444444",
    "ytick.color": "#444444",
    "legend.frameon": False,
    "figure.dpi": 100,
    "savefig.dpi": 110,
    "savefig.bbox": "tight",
}


@contextmanager
def _style() -> Iterator[None]:
    import matplotlib as mpl

    with mpl.rc_context(_RC):
        yield


def _figure(ncols: int, nrows: int = 1, width: float = 4.2, height: float = 3.3):
    """A Figure with a grid of axes, without pyplot (no global state, no GUI backend)."""
    from ._display import Figure

    # a Figure that Jupyter shows as PNG without pyplot (see _display)
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes.ravel()


def _effect_label(column: str) -> str:
    return "Intercept" if column == "(Intercept)" else column


def _family(model: Any) -> Any:
    """The GLMM's family, None for a linear mixed model."""
    return getattr(model, "family", None)


def _response_name(model: Any) -> str:
    """The response as the formula writes it (glmer's design names it internally)."""
    spec = model.design.spec
    if spec.response in model.design.frame.columns and not spec.response.startswith("__"):
        return spec.response
    return spec.text.split("~", 1)[0].strip()


def _response_label(model: Any) -> str:
    """The y-axis label of fitted values: the response, and for a GLMM its mean's scale."""
    name = _response_name(model)
    family = _family(model)
    if family is None:
        return name
    if family.proportion_response:
        if name.startswith("cbind("):
            return f"proportion {name[6:].split(',', 1)[0].strip()} (response scale)"
        success = getattr(model, "success_level", None)
        return f"P({name} = {success})" if success else f"P({name}) (response scale)"
    return f"mean {name} (response scale)"


def _grouping_columns(model: Any) -> set[str]:
    if not hasattr(model, "crossprods"):  # an lm
        return set()
    return {factor for term in model.crossprods.terms for factor in term.factors}


def _x_column(model: Any, x: str | None) -> str:
    """The covariate on the x axis: ``x`` when given, else a numeric fixed-effect
    covariate that is no grouping factor, a random slope of the plotted term first."""
    frame = model.design.frame
    grouping = _grouping_columns(model)
    if x is not None:
        if x not in frame.columns or x == model.design.spec.response or x in grouping:
            raise DataError(
                f"x: {x!r} is not a covariate of the model. Expecting one of "
                f"{[c for c in frame.columns if c not in grouping and not c.startswith('__')]}."
            )
        if not pd.api.types.is_numeric_dtype(frame[x].dtype) or isinstance(
            frame[x].dtype, pd.CategoricalDtype
        ):
            raise DataError(f"x: {x!r} is not numeric; fitted lines need a numeric x.")
        return x
    from ..frontend._formulaic_compat import required_variables

    fixed_vars = set(required_variables(model.design.spec.fixed))
    terms = model.crossprods.terms if hasattr(model, "crossprods") else []
    slope_vars = [v for term in terms for v in required_variables(term.expr or "1")]

    def numeric(column: str) -> bool:
        if column not in frame.columns or column in grouping:
            return False
        values = frame[column]
        return (
            pd.api.types.is_numeric_dtype(values.dtype)
            and not isinstance(values.dtype, pd.CategoricalDtype)
            and values.nunique() > 2
        )

    candidates = [v for v in slope_vars if v in fixed_vars] + [
        c for c in frame.columns if c in fixed_vars
    ]
    for column in candidates:
        if numeric(column):
            return column
    raise DataError(
        "fitted plots need a numeric fixed-effect covariate for the x axis (grouping "
        "factors do not count); the model has none. Pass x= to choose one."
    )


def _typical_row(frame: pd.DataFrame, skip: set[str]) -> dict[str, Any]:
    """Covariates held fixed: numeric columns at their mean, factors at the reference level."""
    row: dict[str, Any] = {}
    for column in frame.columns:
        if column in skip:
            continue
        values = frame[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            row[column] = pd.Categorical([values.cat.categories[0]], values.cat.categories)[0]
        elif pd.api.types.is_bool_dtype(values.dtype):
            row[column] = False
        elif pd.api.types.is_numeric_dtype(values.dtype):
            row[column] = float(values.mean())
        else:
            row[column] = sorted(values.dropna().astype(str).unique())[0]
    return row


class PlotAccessor:
    """The ``m.plot`` namespace of a fitted model.

    Parameters
    ----------
    model : LinearMixedModel

    Examples
    --------
    >>> import mixedmodels as mm
    >>> m = mm.lmer("gpa ~ occasion + (1 | student)", mm.datasets.gpa(seed=1))
    >>> fig = m.plot.caterpillar(nsim=100, seed=1)
    >>> type(fig).__name__
    'Figure'
    """

    def __init__(self, model: LinearMixedModel):
        self._model = model

    # -- caterpillar --------------------------------------------------------------------
    def caterpillar(
        self,
        level: float = 0.95,
        *,
        simulate: bool = True,
        nsim: int = 1000,
        seed: Any = None,
    ) -> Figure:
        """Random effects ranked with their intervals; those excluding 0 in the accent colour.

        One panel per grouping factor and effect, as the seed's REsim plots.

        Parameters
        ----------
        level : float
            Interval coverage: median ± z·sd of the draws (or mode ± z·conditional SD).
        simulate : bool
            Use :meth:`resim` draws (merTools' way, the default) or the conditional modes
            and conditional SDs directly.
        nsim, seed
            Passed to :meth:`resim`.

        Returns
        -------
        matplotlib.figure.Figure
        """
        if not 0.0 < level < 1.0:
            raise ValueError(f"level: expecting a number between 0 and 1. Got {level!r}.")
        z = stats.norm.ppf(1.0 - (1.0 - level) / 2.0)
        if simulate:
            table = self._model.resim(nsim=nsim, seed=seed)
            centre, spread = table["median"].to_numpy(), table["sd"].to_numpy()
        else:
            table = self._model.random_effects()
            centre, spread = table["value"].to_numpy(), table["se"].to_numpy()
        table = table.assign(centre=centre, lower=centre - z * spread, upper=centre + z * spread)
        panels = list(table.groupby(["group_var", "effect"], sort=False))
        family = _family(self._model)
        with _style():
            ncols = min(len(panels), 3)
            nrows = -(-len(panels) // ncols)
            fig, axes = _figure(ncols, nrows, width=4.4 if ncols > 1 else 7.0, height=3.2)
            for ax, ((group_var, effect), part) in zip(axes, panels, strict=False):
                part = part.sort_values("centre")
                rank = np.arange(1, len(part) + 1)
                excludes = ((part["lower"] > 0) | (part["upper"] < 0)).to_numpy()
                colours = np.where(excludes, ACCENT, MUTED)
                width = 1.6 if len(part) < 60 else 0.9
                ax.vlines(rank, part["lower"], part["upper"], colors=colours, linewidth=width)
                ax.scatter(rank, part["centre"], s=4, color="#333333", zorder=3, linewidths=0)
                ax.axhline(0.0, color="#333333", linestyle=":", linewidth=0.8)
                ax.set_title(f"{group_var}: {effect}")
                ax.set_xlabel(f"{group_var} (ranked)")
                ax.set_ylabel("effect" if family is None else f"effect ({family.link.name} scale)")
                ax.set_xlim(0, len(part) + 1)
                ax.text(
                    0.02,
                    0.97,
                    f"{int(excludes.sum())} of {len(part)} intervals exclude 0",
                    transform=ax.transAxes,
                    va="top",
                    fontsize=8,
                    color=ACCENT,
                )
            for ax in axes[len(panels) :]:
                ax.set_visible(False)
            how = "REsim median ± z·sd" if simulate else "conditional mode ± z·SD"
            fig.suptitle(f"Random effects with {level:.0%} intervals ({how})", fontsize=10)
        return fig

    # -- shrinkage ------------------------------------------------------------------------
    def _term_index(self, group: str | None) -> int:
        terms = self._model.crossprods.terms
        if group is None:
            return 0
        for index, term in enumerate(terms):
            if term.group == group:
                return index
        raise DataError(
            f"group: {group!r} is not a grouping factor of the model. "
            f"Expecting one of {sorted({t.group for t in terms})}."
        )

    def shrinkage(self, group: str | None = None) -> Figure:
        """Per-group fits of the model's fixed part against the mixed model's group
        coefficients.

        Each group's own fit has the same fixed part as the model (least squares for a
        linear mixed model, a GLM by IRLS on the link scale for a GLMM, see
        :func:`per_group_fits`); the columns a group cannot estimate (covariates constant
        within it, such as a group-level covariate; for a GLMM every column outside the
        term) are held at the mixed model's estimates.  Densities of the per-group and the
        mixed-model coefficients per effect of the term, and for two or more effects arrows
        from each group's own estimate to its mixed-model estimate: the mixed model pulls
        extreme groups toward the population.  Groups whose fit does not exist (fewer rows
        than effects, or a GLM that diverges, e.g. all-0 or all-1 outcomes) are counted in
        the title and left out.

        Parameters
        ----------
        group : str, optional
            The grouping factor; the one with most levels when omitted.

        Returns
        -------
        matplotlib.figure.Figure
        """
        model = self._model
        term = model.crossprods.terms[self._term_index(group)]
        coef = model.coef()
        coef = coef[coef["group_var"] == term.group]
        mixed = coef.pivot(index="group", columns="effect", values="value")
        effects = [_effect_label(c) for c in term.columns]
        separate = per_group_fits(model, term)
        family = _family(model)
        scale = "" if family is None else f" ({family.link.name} scale)"
        n_missing = int(separate[effects].isna().any(axis=1).sum())
        separate = separate.reindex(mixed.index)
        with _style():
            ncols = len(effects) + (1 if len(effects) >= 2 else 0)
            fig, axes = _figure(ncols, width=3.8, height=3.2)
            for ax, effect in zip(axes, effects, strict=False):
                values = {
                    "per-group fit": separate[effect].to_numpy(dtype=float),
                    "mixed model": mixed[effect].to_numpy(dtype=float),
                }
                finite = np.concatenate([v[np.isfinite(v)] for v in values.values()])
                low, high = np.quantile(finite, [0.005, 0.995])
                pad = 0.15 * (high - low if high > low else 1.0)
                grid = np.linspace(low - pad, high + pad, 256)
                for (label, v), colour in zip(values.items(), (MUTED, ACCENT), strict=True):
                    v = v[np.isfinite(v)]
                    if v.size > 1 and np.ptp(v) > 0:
                        density = stats.gaussian_kde(v)(grid)
                        ax.fill_between(grid, density, color=colour, alpha=0.25, linewidth=0)
                        ax.plot(grid, density, color=colour, linewidth=1.4, label=label)
                ax.set_title(f"{effect}{scale}")
                ax.set_xlabel(f"{effect} per {term.group}{scale}")
                ax.set_ylabel("density")
            axes[0].legend(loc="upper left", fontsize=8)
            if len(effects) >= 2:
                ax = axes[len(effects)]
                first, second = effects[0], effects[1]
                x0, y0 = separate[first].to_numpy(float), separate[second].to_numpy(float)
                x1, y1 = mixed[first].to_numpy(float), mixed[second].to_numpy(float)
                ok = np.isfinite(x0) & np.isfinite(y0)
                ax.quiver(
                    x0[ok],
                    y0[ok],
                    (x1 - x0)[ok],
                    (y1 - y0)[ok],
                    angles="xy",
                    scale_units="xy",
                    scale=1,
                    color=MUTED,
                    width=0.003,
                    alpha=0.7,
                )
                ax.scatter(x1, y1, s=6, color=ACCENT, zorder=3, label="mixed model")
                fixef = {_effect_label(c): v for c, v in model.fixef.items()}
                ax.scatter(
                    [fixef.get(first, 0.0)],
                    [fixef.get(second, 0.0)],
                    marker="+",
                    s=120,
                    color="black",
                    zorder=4,
                    label="population",
                )
                ax.set_xlabel(first)
                ax.set_ylabel(second)
                ax.set_title(f"own fit → mixed model{scale}")
                ax.legend(loc="best", fontsize=8)
            if n_missing:
                axes[0].text(
                    0.98,
                    0.97,
                    f"{n_missing} of {len(separate)}\nwithout an own fit",
                    transform=axes[0].transAxes,
                    ha="right",
                    va="top",
                    fontsize=8,
                    color=MUTED,
                )
            fig.suptitle(f"Shrinkage of per-{term.group} estimates{scale}", fontsize=10)
        return fig

    # -- fitted lines -----------------------------------------------------------------------
    def _x_column(self, x: str | None) -> str:
        return _x_column(self._model, x)

    def _curve(self, frame: pd.DataFrame, selected: list[int]) -> np.ndarray:
        """Fitted values of the rows of ``frame`` with the random effects of the
        ``selected`` terms, on the response scale."""
        model = self._model
        eta = model.design.encode_fixed(frame) @ model.fixef.to_numpy()
        if selected:
            eta = eta + model._random_part(frame, selected)
        family = _family(model)
        return family.link.inverse(eta) if family is not None else eta

    def fitted(
        self,
        groups: Sequence[Any] | None = None,
        *,
        group: str | None = None,
        x: str | None = None,
        lm: bool = True,
    ) -> Figure:
        """Data and fitted lines of chosen groups against the population line.

        The lines are predictions along a grid of ``x`` with every other covariate held at
        its mean (numeric) or reference level (factor), so they are straight (or, for a
        GLMM, the inverse-link curve) whatever else the model holds.  A group's line
        carries its own random effects and those of the factors it is nested in (a ward's
        hospital), not those of crossed factors; the population line has none.  A GLMM's
        lines are on the response scale (probabilities, means).  The left panel shows the
        chosen groups' observations with their lines, the population line and, for a
        linear mixed model, the ordinary least-squares line; the right panel every group's
        line.

        Parameters
        ----------
        groups : sequence, optional
            Levels of the grouping factor to show; the first two when omitted.
        group : str, optional
            The grouping factor; the one with most levels when omitted.
        x : str, optional
            The covariate on the x axis; by default a numeric fixed-effect covariate that
            is no grouping factor, a random slope of the term first.
        lm : bool
            Add the ordinary least-squares line on the fixed part, as :func:`mixedmodels.lm`
            fits it (linear mixed models only: for a GLMM it is left out, a least-squares
            line of a binary or count response being no comparison).

        Returns
        -------
        matplotlib.figure.Figure
        """
        model = self._model
        index = self._term_index(group)
        term = model.crossprods.terms[index]
        frame = model.design.frame.reset_index(drop=True)
        xcol = self._x_column(x)
        chosen = [str(g) for g in (groups if groups is not None else term.levels[:2])]
        unknown = [g for g in chosen if g not in set(map(str, term.levels))]
        if unknown:
            raise DataError(
                f"groups: {unknown} are not levels of {term.group!r} "
                f"(e.g. {list(term.levels[:3])})."
            )
        family = _family(model)
        grouping = _grouping_columns(model)
        response = model.design.spec.response
        typical = _typical_row(frame, grouping | {response, xcol})
        # the terms a group's line carries: its own and those constant within each of its
        # levels (the factors it is nested in)
        nesting = [
            i
            for i, other in enumerate(model.crossprods.terms)
            if i == index or pd.Series(other.codes).groupby(term.codes).nunique().max() == 1
        ]
        xs = frame[xcol].to_numpy(dtype=float)
        y = model.design.y
        label = _response_label(model)
        scale = "" if family is None else " (response scale)"

        def group_curves(codes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
            """(codes × n) grids of x over each group's range and the group's line."""
            low = pd.Series(xs).groupby(term.codes).min().to_numpy()[codes]
            high = pd.Series(xs).groupby(term.codes).max().to_numpy()[codes]
            grid = low[:, None] + (high - low)[:, None] * np.linspace(0.0, 1.0, n)[None, :]
            first_row = np.unique(term.codes, return_index=True)[1][codes]
            rows = np.repeat(first_row, n)
            curve_frame = pd.DataFrame({k: [v] * rows.size for k, v in typical.items()})
            for column in grouping:
                curve_frame[column] = frame[column].to_numpy()[rows]
            curve_frame[xcol] = grid.ravel()
            return grid, self._curve(curve_frame, nesting).reshape(grid.shape)

        population_x = np.linspace(xs.min(), xs.max(), 60)
        population_frame = pd.DataFrame({k: [v] * population_x.size for k, v in typical.items()})
        population_frame[xcol] = population_x
        population = self._curve(population_frame, [])
        codes_of = {str(level): i for i, level in enumerate(term.levels)}
        colours = [ACCENT, SECOND, "#C99A2E", "#6B8E23", "#7B5EA7", "#2F4F4F"]
        held = [c for c in typical if c not in grouping]
        note = f"other covariates at mean / reference level ({', '.join(held)})" if held else ""
        with _style():
            fig, axes = _figure(2, width=4.6, height=3.5)
            ax = axes[0]
            for i, level in enumerate(chosen):
                code = codes_of[level]
                rows = np.flatnonzero(term.codes == code)
                colour = colours[i % len(colours)]
                ax.scatter(xs[rows], y[rows], s=24, color=colour, alpha=0.85, linewidths=0)
                grid, curve = group_curves(np.array([code]), 40)
                ax.plot(
                    grid[0], curve[0], color=colour, linewidth=1.4, label=f"{level} (mixed model)"
                )
            if lm and family is None:
                # what mm.lm fits on the same rows and fixed-effects columns (the plot
                # reads the model's design; it does not refit through the package top)
                ols = np.linalg.lstsq(model.design.X, y, rcond=None)[0]
                ax.plot(
                    population_x,
                    model.design.encode_fixed(population_frame) @ ols,
                    color=MUTED,
                    linewidth=2.4,
                    label="lm",
                )
            ax.plot(
                population_x,
                population,
                color="black",
                linewidth=1.1,
                linestyle="--",
                label="population (mixed model)",
            )
            ax.set_xlabel(xcol)
            ax.set_ylabel(label)
            ax.set_title(f"Chosen {term.group}s{scale}")
            ax.legend(fontsize=8, loc="best")
            ax = axes[1]
            grid, curve = group_curves(np.arange(term.n_levels), 12)
            ax.plot(grid.T, curve.T, color=MUTED, alpha=0.35, linewidth=0.6)
            ax.plot(population_x, population, color=ACCENT, linewidth=1.8, label="population")
            ax.set_xlabel(xcol)
            ax.set_ylabel(label)
            ax.set_title(f"Every {term.group}{scale}")
            ax.legend(fontsize=8, loc="best")
            ax.sharey(axes[0])
            if note:
                fig.suptitle(f"Fitted lines: {note}", fontsize=9)
        return fig

    # -- marginal covariance ------------------------------------------------------------------
    def marginal_cov(
        self, groups: Sequence[Any] | None = None, *, group: str | None = None
    ) -> Figure:
        """Heatmap of the marginal covariance Var(y) of the rows of chosen groups.

        For a GLMM there is no such matrix on the scale of y; the heatmap is then the
        covariance of the linear predictor, Cov(η) = ZΛΛᵀZᵀ (link scale, random effects
        only, no residual), and says so.

        Uses ``m.marginal_cov(groups, group_var)`` (which knows residual structures) when
        the model provides it; otherwise σ²(ZΛΛᵀZᵀ + I) for the chosen rows
        (:func:`marginal_covariance`).

        Parameters
        ----------
        groups : sequence, optional
            Levels of the grouping factor whose rows to show; the first five when omitted.
        group : str, optional
            The grouping factor; the one with most levels when omitted.

        Returns
        -------
        matplotlib.figure.Figure
        """
        model = self._model
        term = model.crossprods.terms[self._term_index(group)]
        chosen = list(groups) if groups is not None else list(term.levels[:5])
        provider = getattr(model, "marginal_cov", None)
        family = _family(model)
        if family is not None:
            rows = _rows_of(term, chosen)
            cov = _random_part_covariance(model, rows, relative=True)
        elif callable(provider):
            rows = _rows_of(term, chosen)
            cov = provider(groups=[str(g) for g in chosen], group_var=term.group)
            cov = cov.toarray() if hasattr(cov, "toarray") else np.asarray(cov, dtype=float)
        else:
            cov, rows = marginal_covariance(model, chosen, group=term.group)
        with _style():
            fig, axes = _figure(1, width=5.6, height=4.8)
            ax = axes[0]
            image = ax.imshow(cov, cmap="YlOrRd", interpolation="nearest")
            ax.grid(False)
            what = "covariance" if family is None else f"covariance ({family.link.name} scale)"
            fig.colorbar(image, ax=ax, shrink=0.8, label=what)
            # boundaries between groups
            labels = np.asarray(term.levels, dtype=object)[term.codes[rows]]
            edges = np.flatnonzero(labels[1:] != labels[:-1]) + 0.5
            for edge in edges:
                ax.axhline(edge, color="white", linewidth=0.8)
                ax.axvline(edge, color="white", linewidth=0.8)
            ax.set_xlabel("observation")
            ax.set_ylabel("observation")
            shown = ", ".join(map(str, chosen))
            if family is None:
                ax.set_title(f"Var(y) for {term.group} {shown}")
            else:
                ax.set_title(
                    f"Cov(η), linear predictor ({family.link.name} scale), {term.group} {shown}"
                )
        return fig

    # -- residual diagnostics ---------------------------------------------------------------
    def residuals(self) -> Figure:
        """Residuals against fitted values, a normal QQ plot of the residuals and one of the
        standardized random effects (every effect of every grouping factor).

        Returns
        -------
        matplotlib.figure.Figure
        """
        model = self._model
        fitted, resid = model.fitted(), model.residuals()
        with _style():
            fig, axes = _figure(3, width=3.7, height=3.2)
            ax = axes[0]
            ax.scatter(fitted, resid, s=5, color=MUTED, alpha=0.6, linewidths=0)
            ax.axhline(0.0, color=ACCENT, linewidth=1.0)
            order = np.argsort(fitted)
            window = max(5, len(fitted) // 20)
            smooth = pd.Series(resid[order]).rolling(window, center=True, min_periods=1).mean()
            ax.plot(fitted[order], smooth, color="black", linewidth=1.0)
            ax.set_xlabel("fitted")
            ax.set_ylabel("residual")
            ax.set_title("Residuals vs fitted")
            _qq(axes[1], resid / model.sigma, MUTED, None)
            axes[1].set_title("Normal QQ: residuals / σ")
            table = model.random_effects()
            colours = [ACCENT, SECOND, "#C99A2E", "#6B8E23", MUTED]
            for i, ((group_var, effect), part) in enumerate(
                table.groupby(["group_var", "effect"], sort=False)
            ):
                values = part["value"].to_numpy()
                sd = values.std(ddof=1) if len(values) > 1 else 0.0
                standardized = values / sd if sd > 0 else values
                _qq(axes[2], standardized, colours[i % len(colours)], f"{group_var}: {effect}")
            axes[2].set_title("Normal QQ: random effects")
            axes[2].legend(fontsize=7, loc="upper left")
        return fig

    # -- profile ------------------------------------------------------------------------------
    def profile(self, **kwargs: Any) -> Figure:
        """ζ traces of the likelihood profile, one panel per parameter (lme4's ``xyplot``).

        Needs ``m.profile()`` (a table with columns ``parameter, value, zeta``); keyword
        arguments are passed to it.

        Returns
        -------
        matplotlib.figure.Figure
        """
        provider = getattr(self._model, "profile", None)
        if not callable(provider):
            raise MixedModelsError(
                "profile plots need likelihood profiles (m.profile()), which this version of "
                "mixedmodels does not provide yet."
            )
        table = provider(**kwargs)
        needed = {"parameter", "value", "zeta"}
        if not needed.issubset(getattr(table, "columns", ())):
            raise MixedModelsError(
                f"m.profile() returned columns {list(getattr(table, 'columns', []))}; "
                f"profile plots expect {sorted(needed)}."
            )
        panels = list(table.groupby("parameter", sort=False))
        with _style():
            ncols = min(len(panels), 4)
            nrows = -(-len(panels) // ncols)
            fig, axes = _figure(ncols, nrows, width=3.0, height=2.7)
            for ax, (parameter, part) in zip(axes, panels, strict=False):
                part = part.sort_values("value")
                ax.plot(part["value"], part["zeta"], color=ACCENT, linewidth=1.4)
                for level in (-1.96, 0.0, 1.96):
                    ax.axhline(level, color=MUTED, linestyle=":", linewidth=0.8)
                ax.set_title(str(parameter))
                ax.set_xlabel("value")
                ax.set_ylabel("ζ")
            for ax in axes[len(panels) :]:
                ax.set_visible(False)
        return fig


class LinearModelPlotAccessor:
    """The ``fit.plot`` namespace of an :func:`~mixedmodels.lm` fit: the plots that have a
    meaning without random effects, in the mixed models' style.

    Parameters
    ----------
    model : LinearModel

    Examples
    --------
    >>> import mixedmodels as mm
    >>> fit = mm.lm("gpa ~ occasion + sex", mm.datasets.gpa(seed=1))
    >>> type(fit.plot.fitted()).__name__
    'Figure'
    """

    def __init__(self, model: Any):
        self._model = model

    def fitted(self, *, x: str | None = None, level: float = 0.95) -> Figure:
        """The data and the fitted line along ``x`` with its confidence band
        (``predict.lm(interval = "confidence")``), every other covariate at its mean
        (numeric) or reference level (factor), as the mixed models' population line.

        Parameters
        ----------
        x : str, optional
            The covariate on the x axis; by default the first numeric one of the formula.
        level : float
            Coverage of the band.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from ..inference.linear import prediction_interval

        model = self._model
        frame = model.design.frame.reset_index(drop=True)
        xcol = _x_column(model, x)
        response = model.design.spec.response
        typical = _typical_row(frame, {response, xcol})
        xs = frame[xcol].to_numpy(dtype=float)
        grid = np.linspace(xs.min(), xs.max(), 60)
        line_frame = pd.DataFrame({k: [v] * grid.size for k, v in typical.items()})
        line_frame[xcol] = grid
        band = prediction_interval(model, line_frame, level=level, interval="confidence")
        held = list(typical)
        with _style():
            fig, axes = _figure(1, width=5.2, height=3.8)
            ax = axes[0]
            ax.scatter(xs, model.design.y, s=6, color=MUTED, alpha=0.5, linewidths=0)
            ax.fill_between(grid, band["lower"], band["upper"], color=ACCENT, alpha=0.2,
                            linewidth=0, label=f"{100 * level:g}% confidence band")  # fmt: skip
            ax.plot(grid, band["fit"], color=ACCENT, linewidth=1.8, label="lm")
            ax.set_xlabel(xcol)
            ax.set_ylabel(response)
            ax.set_title(f"Fitted line: {response} ~ {xcol}")
            ax.legend(fontsize=8, loc="best")
            if held:
                fig.suptitle(
                    f"Other covariates at mean / reference level ({', '.join(held)})",
                    fontsize=9,
                )
        return fig

    def residuals(self) -> Figure:
        """Residuals against fitted values (with a running mean) and a normal QQ plot of
        the standardized residuals: the first two panels of R's ``plot.lm``.

        Returns
        -------
        matplotlib.figure.Figure
        """
        model = self._model
        fitted, resid = model.fitted(), model.residuals()
        w = model.design.weights
        standardized = resid * (1.0 if w is None else np.sqrt(w)) / model.sigma
        with _style():
            fig, axes = _figure(2, width=3.9, height=3.2)
            ax = axes[0]
            ax.scatter(fitted, resid, s=5, color=MUTED, alpha=0.6, linewidths=0)
            ax.axhline(0.0, color=ACCENT, linewidth=1.0)
            order = np.argsort(fitted)
            window = max(5, len(fitted) // 20)
            smooth = pd.Series(resid[order]).rolling(window, center=True, min_periods=1).mean()
            ax.plot(fitted[order], smooth, color="black", linewidth=1.0)
            ax.set_xlabel("fitted")
            ax.set_ylabel("residual")
            ax.set_title("Residuals vs fitted")
            _qq(axes[1], standardized, MUTED, None)
            axes[1].set_title("Normal QQ: residuals / σ")
        return fig


def _qq(ax: Axes, values: np.ndarray, colour: str, label: str | None) -> None:
    values = np.sort(np.asarray(values, dtype=float))
    n = len(values)
    if n == 0:
        return
    # R's ppoints
    a = 3.0 / 8.0 if n <= 10 else 0.5
    theoretical = stats.norm.ppf((np.arange(1, n + 1) - a) / (n + 1 - 2 * a))
    ax.scatter(theoretical, values, s=6, color=colour, alpha=0.7, linewidths=0, label=label)
    lim = [theoretical.min(), theoretical.max()]
    ax.plot(lim, lim, color="black", linewidth=0.8)
    ax.set_xlabel("normal quantile")
    ax.set_ylabel("sample quantile")


def _glm_fit(
    family: Any, X: np.ndarray, y: np.ndarray, wt: np.ndarray, offset: np.ndarray
) -> np.ndarray | None:
    """A GLM by IRLS (R's ``glm.fit`` without its step halving); None when it diverges."""
    mu = family.starting_mu(y, wt)
    eta = family.link.link(mu)
    beta = None
    with np.errstate(all="ignore"):
        for _ in range(50):
            d = family.link.mu_eta(eta)
            w = wt * d**2 / family.variance(mu)
            z = working_response(family.link, y, eta, mu, offset, d)
            if not (np.all(np.isfinite(w)) and np.all(np.isfinite(z))):
                return None
            root = np.sqrt(w)
            new = np.linalg.lstsq(root[:, None] * X, root * z, rcond=None)[0]
            eta = offset + X @ new
            mu = family.link.inverse(eta)
            if beta is not None and np.max(np.abs(new - beta)) < 1e-8 * (1 + np.max(np.abs(new))):
                # separation drives η off to ±∞ slowly: call a binomial fit with |η| > 15
                # diverged
                separated = family.proportion_response and np.max(np.abs(eta - offset)) >= 15
                return None if separated else new
            beta = new
    return None


def per_group_fits(model: LinearMixedModel, term: Any) -> pd.DataFrame:
    """Each group's own fit of the model's fixed part (least squares, or a GLM on the link
    scale for a GLMM), one row per level of ``term``'s factor, one column per effect of the
    term (the columns of its matrix, which need not be fixed effects: ``0 + occas``).

    The term's own columns are estimated in every group that can (NaN otherwise).  For a
    linear mixed model the other fixed columns are estimated too where the group identifies
    them with a residual degree of freedom left, else held at the mixed model's estimates
    through the offset.  For a GLMM the other columns are always held there: per-group GLMs
    of every column are mostly separated on binary data (413 of the 498 raters of the
    chapter's speed-dating model), while the term's own columns diverge only in groups
    whose outcomes are all equal; those groups are NaN.

    Examples
    --------
    >>> import mixedmodels as mm
    >>> from mixedmodels.toolbox.plots import per_group_fits
    >>> m = mm.lmer("gpa ~ occasion + (1 + occasion | student)", mm.datasets.gpa(seed=1))
    >>> fits = per_group_fits(m, m.crossprods.terms[0])
    >>> fits.columns.tolist()
    ['Intercept', 'occasion']
    """
    design = model.design
    X, y = design.X, design.y
    beta = model.fixef.to_numpy()
    names = [_effect_label(c) for c in design.fixed_names]
    family = _family(model)
    if family is not None:
        wt, offset = model.problem.prior_weights, model.problem.offset
    else:
        wt = design.weights if design.weights is not None else np.ones(y.size)
        offset = design.offset if design.offset is not None else np.zeros(y.size)
    effects = [_effect_label(c) for c in term.columns]
    # the term's own columns come from its matrix; fixed columns of the same effects
    # (intercept, slopes) are those columns and are not estimated twice
    others = [j for j, name in enumerate(names) if name not in effects]
    k = len(effects)
    out = np.full((term.n_levels, k), np.nan)
    order = np.argsort(term.codes, kind="stable")
    bounds = np.searchsorted(term.codes[order], np.arange(term.n_levels + 1))
    for code in range(term.n_levels):
        rows = order[bounds[code] : bounds[code + 1]]
        Xg, Zg = X[rows], term.matrix[rows]
        if np.linalg.matrix_rank(Zg) < k:
            continue
        columns: list[int] = []
        for j in others if family is None else ():
            if (
                rows.size > k + len(columns) + 1
                and np.linalg.matrix_rank(np.column_stack([Zg, Xg[:, columns + [j]]]))
                == k + len(columns) + 1
            ):
                columns.append(j)
        held = [j for j in others if j not in columns]
        off = offset[rows] + Xg[:, held] @ beta[held]
        design_g = np.column_stack([Zg, Xg[:, columns]])
        if family is None:
            root = np.sqrt(wt[rows])
            coef = np.linalg.lstsq(root[:, None] * design_g, root * (y[rows] - off))[0]
        else:
            fit = _glm_fit(family, design_g, y[rows], wt[rows], off)
            if fit is None:
                continue
            coef = fit
        out[code] = coef[:k]
    return pd.DataFrame(out, index=pd.Index(term.levels, name="group"), columns=effects)


def _rows_of(term: Any, chosen: Sequence[Any]) -> np.ndarray:
    wanted = {str(g) for g in chosen}
    unknown = sorted(wanted - {str(v) for v in term.levels})
    if unknown:
        raise DataError(
            f"groups: {unknown} are not levels of {term.group!r} (e.g. {list(term.levels[:3])})."
        )
    labels = np.asarray(term.levels, dtype=object)[term.codes]
    # rows in data order, as m.marginal_cov() returns them
    return np.flatnonzero(np.isin(labels.astype(str), list(wanted)))


def marginal_covariance(
    model: LinearMixedModel, groups: Sequence[Any], group: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Marginal covariance σ²(ZΛΛᵀZᵀ + I) of the rows of some groups, and those rows.

    Built term by term from the stored small model matrices (no dense Z): two rows share a
    term's contribution xᵢᵀ Σ_term xⱼ when they are in the same level of that term's factor.
    Only the chosen rows are formed, so it stays small.

    Parameters
    ----------
    model : LinearMixedModel
    groups : sequence
        Levels of ``group`` whose rows to include.
    group : str, optional
        The grouping factor; the one with most levels when omitted.

    Returns
    -------
    (ndarray, ndarray)
        The covariance matrix and the row indices (into the fitted rows) it is about.

    Examples
    --------
    >>> import mixedmodels as mm
    >>> from mixedmodels.toolbox.plots import marginal_covariance
    >>> m = mm.lmer("gpa ~ occasion + (1 | student)", mm.datasets.gpa(seed=1))
    >>> cov, rows = marginal_covariance(m, ["1"])
    >>> cov.shape
    (6, 6)
    >>> bool(abs(cov[0, 1] - m.varcorr()["vcov"][0]) < 1e-12)
    True
    """
    terms = model.crossprods.terms
    term = terms[0]
    if group is not None:
        matches = [t for t in terms if t.group == group]
        if not matches:
            raise DataError(f"group: {group!r} is not a grouping factor of the model.")
        term = matches[0]
    rows = _rows_of(term, groups)
    cov = model.sigma**2 * np.eye(rows.size) + _random_part_covariance(model, rows)
    return cov, rows


def _random_part_covariance(
    model: LinearMixedModel, rows: np.ndarray, relative: bool = False
) -> np.ndarray:
    """Z Σ Zᵀ of some rows, term by term; ``relative`` uses ΛΛᵀ without σ² (a GLMM's
    random effects are Λu with u standard normal, whatever its dispersion)."""
    covariances = (
        [T @ T.T for T in model.crossprods.factors(model.theta)]
        if relative
        else model._term_covariances()
    )
    cov = np.zeros((rows.size, rows.size))
    for t, sigma_term in zip(model.crossprods.terms, covariances, strict=True):
        x = t.matrix[rows]
        same = t.codes[rows][:, None] == t.codes[rows][None, :]
        cov += same * (x @ sigma_term @ x.T)
    return cov
