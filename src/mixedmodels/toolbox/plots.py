"""Plots of fitted mixed models, one call each (the seed chapter's ggplots, in matplotlib).

Reached through ``m.plot``: :meth:`PlotAccessor.caterpillar`, :meth:`~PlotAccessor.shrinkage`,
:meth:`~PlotAccessor.fitted`, :meth:`~PlotAccessor.marginal_cov`,
:meth:`~PlotAccessor.residuals` and :meth:`~PlotAccessor.profile`. Every method returns a
:class:`matplotlib.figure.Figure` built without pyplot's global state (so nothing pops up and
nothing leaks between calls); show it in a notebook by leaving it as the cell's value, or save it
with ``fig.savefig(path)``. All share one quiet style: light grid, no top/right spines, one
accent colour for what matters (significant effects, the mixed model) and grey for the rest.

The style is :mod:`._plot_style`, what the plots read off a model :mod:`._plot_inputs`; an
lm fit's plots are in :mod:`.lm_plots`. This module reads fitted results only; the numerics
never import it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import DataError, MixedModelsError
from ._plot_inputs import (
    _effect_label,
    _family,
    _grouping_columns,
    _response_label,
    _typical_row,
    _x_column,
)
from ._plot_style import ACCENT, MUTED, SECOND, _figure, _qq, _style
from .group_fits import per_group_fits
from .marginal import _random_part_covariance, _rows_of, marginal_covariance

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .._protocols import MixedModel as LinearMixedModel


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
                _shrinkage_densities(ax, separate[effect], mixed[effect])
                ax.set_title(f"{effect}{scale}")
                ax.set_xlabel(f"{effect} per {term.group}{scale}")
                ax.set_ylabel("density")
            axes[0].legend(loc="upper left", fontsize=8)
            if len(effects) >= 2:
                _shrinkage_arrows(axes[len(effects)], model, separate, mixed, effects[:2])
                axes[len(effects)].set_title(f"own fit → mixed model{scale}")
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
        chosen = _chosen_levels(term, groups)
        family = _family(model)
        grouping = _grouping_columns(model)
        response = model.design.spec.response
        lines = _FittedLines(
            curve=self._curve,
            term=term,
            frame=frame,
            xcol=xcol,
            typical=_typical_row(frame, grouping | {response, xcol}),
            grouping=grouping,
            nesting=_nesting_terms(model, index),
        )
        label = _response_label(model)
        scale = "" if family is None else " (response scale)"
        population_x, population_frame, population = lines.population(60)
        held = [c for c in lines.typical if c not in grouping]
        note = f"other covariates at mean / reference level ({', '.join(held)})" if held else ""
        with _style():
            fig, axes = _figure(2, width=4.6, height=3.5)
            ax = axes[0]
            _draw_chosen_groups(ax, lines, chosen, model.design.y)
            if lm and family is None:
                # what mm.lm fits on the same rows and fixed-effects columns (the plot
                # reads the model's design; it does not refit through the package top)
                ols = np.linalg.lstsq(model.design.X, model.design.y, rcond=None)[0]
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
            grid, curve = lines.groups(np.arange(term.n_levels), 12)
            ax.plot(grid.T, curve.T, color=MUTED, alpha=0.35, linewidth=0.6)
            ax.plot(population_x, population, color=ACCENT, linewidth=1.8, label="population")
            ax.set(xlabel=xcol, ylabel=label, title=f"Every {term.group}{scale}")
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


def _shrinkage_densities(ax: Axes, separate: pd.Series, mixed: pd.Series) -> None:
    """Densities of one effect's per-group-fit and mixed-model coefficients."""
    values = {
        "per-group fit": separate.to_numpy(dtype=float),
        "mixed model": mixed.to_numpy(dtype=float),
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


def _shrinkage_arrows(
    ax: Axes, model: Any, separate: pd.DataFrame, mixed: pd.DataFrame, effects: list[str]
) -> None:
    """Arrows from each group's own estimate of two effects to its mixed-model estimate,
    and the population estimate."""
    first, second = effects
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
    ax.legend(loc="best", fontsize=8)


def _chosen_levels(term: Any, groups: Sequence[Any] | None) -> list[str]:
    """The levels of ``term``'s factor to show (the first two by default), checked."""
    chosen = [str(g) for g in (groups if groups is not None else term.levels[:2])]
    unknown = [g for g in chosen if g not in set(map(str, term.levels))]
    if unknown:
        raise DataError(
            f"groups: {unknown} are not levels of {term.group!r} (e.g. {list(term.levels[:3])})."
        )
    return chosen


def _nesting_terms(model: Any, index: int) -> list[int]:
    """The terms a group's fitted line carries: the term ``index`` itself and those
    constant within each of its levels (the factors it is nested in)."""
    term = model.crossprods.terms[index]
    return [
        i
        for i, other in enumerate(model.crossprods.terms)
        if i == index or pd.Series(other.codes).groupby(term.codes).nunique().max() == 1
    ]


@dataclass
class _FittedLines:
    """Fitted lines along the x covariate with every other covariate at its typical value:
    per group (with the random effects of the ``nesting`` terms) and for the population."""

    curve: Callable[[pd.DataFrame, list[int]], np.ndarray]
    term: Any
    frame: pd.DataFrame
    xcol: str
    typical: dict[str, Any]
    grouping: set[str]
    nesting: list[int]

    @property
    def xs(self) -> np.ndarray:
        return self.frame[self.xcol].to_numpy(dtype=float)

    def groups(self, codes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(codes × n) grids of x over each group's range and the group's line."""
        term, xs = self.term, self.xs
        low = pd.Series(xs).groupby(term.codes).min().to_numpy()[codes]
        high = pd.Series(xs).groupby(term.codes).max().to_numpy()[codes]
        grid = low[:, None] + (high - low)[:, None] * np.linspace(0.0, 1.0, n)[None, :]
        first_row = np.unique(term.codes, return_index=True)[1][codes]
        rows = np.repeat(first_row, n)
        curve_frame = pd.DataFrame({k: [v] * rows.size for k, v in self.typical.items()})
        for column in self.grouping:
            curve_frame[column] = self.frame[column].to_numpy()[rows]
        curve_frame[self.xcol] = grid.ravel()
        return grid, self.curve(curve_frame, self.nesting).reshape(grid.shape)

    def population(self, n: int) -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
        """A grid of n x values over the data's range, its frame and the population line."""
        xs = self.xs
        population_x = np.linspace(xs.min(), xs.max(), n)
        frame = pd.DataFrame({k: [v] * population_x.size for k, v in self.typical.items()})
        frame[self.xcol] = population_x
        return population_x, frame, self.curve(frame, [])


def _draw_chosen_groups(ax: Axes, lines: _FittedLines, chosen: list[str], y: np.ndarray) -> None:
    """The chosen groups' observations, each with its fitted line in its own colour."""
    term, xs = lines.term, lines.xs
    codes_of = {str(level): i for i, level in enumerate(term.levels)}
    colours = [ACCENT, SECOND, "#C99A2E", "#6B8E23", "#7B5EA7", "#2F4F4F"]
    for i, level in enumerate(chosen):
        code = codes_of[level]
        rows = np.flatnonzero(term.codes == code)
        colour = colours[i % len(colours)]
        ax.scatter(xs[rows], y[rows], s=24, color=colour, alpha=0.85, linewidths=0)
        grid, curve = lines.groups(np.array([code]), 40)
        ax.plot(grid[0], curve[0], color=colour, linewidth=1.4, label=f"{level} (mixed model)")
