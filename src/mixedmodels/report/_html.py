"""A self-contained HTML report of a fitted mixed model.

Everything is in the one file: the stylesheet is inline, every figure is a base64 PNG, and
the equation is shown as its LaTeX source (no MathJax, no CDN, no network), so the page
opens anywhere, offline, and can be mailed as is.
"""

from __future__ import annotations

import base64
import html
import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import MixedModelsError

_CSS = """
:root { --accent: #B35136; --muted: #6f6f6f; --line: #e4e4e4; --bg: #fafafa; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: #222;
       font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 32px 60px; }
header { border-bottom: 3px solid var(--accent); margin-bottom: 18px; padding-bottom: 10px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 30px 0 10px; color: var(--accent); }
.formula { font-family: "SFMono-Regular", Menlo, Consolas, monospace; font-size: 16px; }
.sub { color: var(--muted); font-size: 13px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 14px 0; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px;
        padding: 8px 14px; min-width: 120px; }
.card .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .v { font-size: 18px; font-weight: 600; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 18px; }
table { border-collapse: collapse; background: #fff; border: 1px solid var(--line);
        font-size: 13.5px; width: 100%; }
th, td { padding: 5px 10px; text-align: right; border-bottom: 1px solid var(--line); }
th { background: #f1f1f1; font-weight: 600; }
td:first-child, th:first-child { text-align: left; }
tr:last-child td { border-bottom: none; }
pre.eq { max-height: 300px; }
pre { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px;
      overflow-x: auto; font-size: 12.5px; line-height: 1.35; }
figure { margin: 0 0 18px; background: #fff; border: 1px solid var(--line); border-radius: 6px;
         padding: 10px; }
figure img { width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 6px; }
.note { color: var(--muted); font-size: 13px; }
"""


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _table(frame: pd.DataFrame, digits: int = 4) -> str:
    shown = frame.copy()
    for column in shown.columns:
        if pd.api.types.is_float_dtype(shown[column]):
            shown[column] = shown[column].map(
                lambda v: (
                    "" if pd.isna(v) else f"{v:.{digits}g}" if abs(v) >= 1e4 else f"{v:.{digits}f}"
                )
            )
    return shown.to_html(index=False, border=0, na_rep="", escape=True)


def _card(key: str, value: Any) -> str:
    return (
        f'<div class="card"><div class="k">{html.escape(key)}</div>'
        f'<div class="v">{html.escape(str(value))}</div></div>'
    )


def _figures(model: Any, nsim: int, seed: Any, progress: bool = False) -> list[tuple[str, str]]:
    """(caption, base64 PNG) of every plot the model supports; the others are skipped."""
    plots: list[tuple[str, Callable[[], Any]]] = [
        (
            "Random effects ranked with 95% REsim intervals; accent: interval excludes 0.",
            lambda: model.plot.caterpillar(nsim=nsim, seed=seed),
        ),
        (
            "Per-group fits of the same fixed part (grey) against the mixed model's "
            "(accent): shrinkage toward the population.",
            lambda: model.plot.shrinkage(),
        ),
        (
            "Two groups' data and fitted lines (other covariates at their means or "
            "reference levels) against the population line; right: every group's line.",
            lambda: model.plot.fitted(),
        ),
        (
            "Marginal covariance of the first groups' observations (Var(y); for a GLMM "
            "Cov(η) of the linear predictor).",
            lambda: model.plot.marginal_cov(),
        ),
        ("Residual diagnostics.", lambda: model.plot.residuals()),
    ]
    from matplotlib.figure import Figure
    from tqdm.auto import tqdm

    out = []
    for caption, make in tqdm(plots, desc="report figures", disable=not progress, leave=False):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fig = make()
        except (MixedModelsError, ValueError):
            continue  # the plot does not apply to this model (e.g. no numeric covariate)
        if isinstance(fig, Figure):
            out.append((caption, _png(fig)))
    return out


def report_html(
    model: Any,
    *,
    title: str | None = None,
    nsim: int = 500,
    seed: Any = 1,
    progress: bool = False,
) -> str:
    """The report of :func:`report` as an HTML string.

    Parameters
    ----------
    model : LinearMixedModel
    title : str, optional
    nsim : int
        Draws for the REsim intervals of the caterpillar plot.
    seed : int, optional
        Seed of those draws (the report is reproducible).
    progress : bool
        Show a progress bar (on stderr) while the figures are drawn.

    Returns
    -------
    str
    """
    criterion = "REML criterion" if getattr(model, "reml", False) else "deviance"
    ngroups = ", ".join(f"{g}: {n}" for g, n in model.ngroups.items())
    cards = [
        ("observations", model.nobs),
        ("groups", ngroups),
        (criterion, f"{model.deviance:.2f}"),
        ("logLik", f"{model.loglik:.2f}"),
        ("AIC", f"{model.aic:.2f}"),
        ("BIC", f"{model.bic:.2f}"),
        ("σ (residual)", f"{model.sigma:.4f}" if hasattr(model, "sigma") else "—"),
        ("converged", "yes" if getattr(model, "converged", True) else "NO"),
        ("singular", "YES" if model.is_singular else "no"),
    ]
    try:
        equation = model.to_latex()
    except (MixedModelsError, ValueError) as error:  # pragma: no cover - defensive
        equation = f"(no equation: {error})"
    sections = [
        f"<header><h1>{html.escape(title or 'Mixed model report')}</h1>"
        f'<div class="formula">{html.escape(model.formula)}</div>'
        f'<div class="sub">Fitted by mixedmodels with '
        f"{'REML' if getattr(model, 'reml', False) else 'maximum likelihood'}.</div></header>",
        f'<div class="cards">{"".join(_card(k, v) for k, v in cards)}</div>',
        "<h2>Model equation</h2>",
        '<p class="note">LaTeX source, as equatiomatic writes it (paste into any LaTeX or '
        "Markdown math block).</p>",
        f'<pre class="eq"><code>{html.escape(equation)}</code></pre>',
        '<div class="grid"><section><h2>Fixed effects</h2>',
        _table(model.fixed_effects()),
        "</section><section><h2>Variance components</h2>",
        _table(model.variance_components()),
        "</section></div>",
        "<h2>Random effects (first 10 rows)</h2>",
        _table(model.random_effects().head(10)),
        "<h2>Plots</h2>",
    ]
    for caption, data in _figures(model, nsim, seed, progress):
        sections.append(
            f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    sections.append("<h2>Summary</h2>")
    sections.append(f"<pre>{html.escape(model.summary())}</pre>")
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title or model.formula)}</title>\n<style>{_CSS}</style>\n"
        f"</head>\n<body><main>\n{body}\n</main></body>\n</html>\n"
    )


def report(
    model: Any,
    path: str | Path,
    *,
    title: str | None = None,
    nsim: int = 500,
    seed: Any = 1,
    progress: bool = False,
) -> Path:
    """Write one self-contained HTML report of a fitted model.

    The page shows the formula and the model equation (LaTeX source), fit statistics, the
    fixed-effects, variance-components and random-effects tables and the plots of
    ``m.plot``; images are embedded as base64 PNG and nothing is loaded from the network.

    Parameters
    ----------
    model : LinearMixedModel
    path : str or Path
        The HTML file to write (its folder is created).
    title : str, optional
    nsim : int
        Draws for the REsim intervals.
    seed : int, optional
    progress : bool
        Show a progress bar (on stderr) while the figures are drawn.

    Returns
    -------
    Path
        The file written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import mixedmodels as mm
    >>> m = mm.lmer("gpa ~ occasion + (1 | student)", mm.datasets.gpa(seed=1))
    >>> out = mm.report(m, pathlib.Path(tempfile.mkdtemp()) / "gpa.html", nsim=100)
    >>> out.read_text().count("<img") >= 4
    True
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    html = report_html(model, title=title, nsim=nsim, seed=seed, progress=progress)
    target.write_text(html, encoding="utf-8")
    return target
