"""The ``mixedmodels`` command: fit a model, write a report, run the seed demo.

Examples (shell)::

    mixedmodels fit "gpa ~ occasion + (1 | student)" --data gpa.csv --format json
    mixedmodels fit "gpa ~ occasion + sex + (1 | student)" --data gpa.csv \\
        --levels levels.json --ddf satterthwaite --confint profile
    mixedmodels fit "decision ~ samerace + (1 | iid)" --data speed_dating.csv \\
        --factor decision=No,Yes --family binomial --link probit
    mixedmodels report "gpa ~ occasion + (1 + occasion | student)" --data gpa.csv -o gpa.html
    mixedmodels demo --data ../shared/data -o demo-output

Mistakes in the input (a missing file, a bad formula, an unknown column, a level missing from
``--levels``) print one line to standard error and exit with status 2; no traceback. Warnings
(a singular fit, a convergence check) print one line each: ``mixedmodels: warning: ...``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from .datasets.files import apply_levels, parse_factor_option, read_levels, read_table
from .errors import MixedModelsError

EXIT_USAGE = 2
#: an unexpected failure (a bug, not a user mistake): still one line, another status
EXIT_FAILURE = 1
CONFINT_METHODS = ("wald", "profile", "boot")
DDF_METHODS = ("normal", "satterthwaite", "kenward-roger")


class CliError(MixedModelsError):
    """A user mistake, reported as one line."""


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", str(text)).strip()


def _print_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """warnings.showwarning without the source line: ``mixedmodels: warning: Kind: text``."""
    print(f"mixedmodels: warning: {category.__name__}: {_one_line(message)}", file=sys.stderr)


def _read_data(args: argparse.Namespace) -> pd.DataFrame:
    data = read_table(args.data)
    levels: dict[str, list[str]] = {}
    if getattr(args, "levels", None):
        levels.update(read_levels(args.levels, dataset=Path(args.data).stem))
    for option in getattr(args, "factor", None) or []:
        column, order = parse_factor_option(option)
        levels[column] = order
    return apply_levels(data, levels) if levels else data


def _fit(args: argparse.Namespace) -> Any:
    from .fitting.glmer import glmer
    from .fitting.lmer import lmer

    data = _read_data(args)
    options = {"weights": args.weights, "offset": args.offset}
    family = args.family or "gaussian"
    if family == "gaussian":
        if args.link not in (None, "identity"):
            raise CliError(
                f"--link {args.link} needs a GLMM --family (binomial, poisson, Gamma, ...); "
                "a linear mixed model has the identity link."
            )
        if args.nagq != 1:
            raise CliError("--nagq applies to GLMMs (--family binomial, poisson, ...).")
        return lmer(args.formula, data, reml=not args.ml, **options)
    if args.ml:
        print("mixedmodels: note: GLMMs are always fitted by maximum likelihood.", file=sys.stderr)
    return glmer(args.formula, data, family=family, link=args.link, nagq=args.nagq, **options)


def _records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records"))


def _fit_statistics(model: Any) -> dict:
    out = {
        "nobs": model.nobs,
        "ngroups": model.ngroups,
        "npar": model.npar,
        "df_resid": model.nobs - model.npar,
        "deviance": model.deviance,
        "loglik": model.loglik,
        "aic": model.aic,
        "bic": model.bic,
        "reml": bool(getattr(model, "reml", False)),
        "converged": bool(getattr(model, "converged", True)),
        "singular": bool(model.is_singular),
    }
    family = getattr(model, "family", None)
    if family is not None:
        out.update(family=family.r_name, link=family.link.name, nagq=model.nagq)
    else:
        out.update(family="gaussian", link="identity")
    if family is None or not family.scale_free:
        out["sigma"] = model.sigma
    return out


def _confint(model: Any, args: argparse.Namespace) -> pd.DataFrame:
    table = model.confint(
        method=args.confint, level=args.level, nsim=args.nsim, seed=args.seed, progress=None
    )
    return table.rename_axis("parameter").reset_index()


def _cmd_fit(args: argparse.Namespace) -> None:
    model = _fit(args)
    fixed = model.fixed_effects(ddf=args.ddf)
    intervals = _confint(model, args) if args.confint else None
    if args.format == "text":
        print(model.summary())
        if args.ddf != "normal":
            print(f"\nFixed effects ({args.ddf} degrees of freedom):")
            print(fixed.to_string(index=False))
        if intervals is not None:
            print(f"\nConfidence intervals ({args.confint}, level {args.level:g}):")
            print(intervals.to_string(index=False))
    elif args.format == "csv":
        fixed.to_csv(sys.stdout, index=False)
    else:
        statistics = _fit_statistics(model)
        out = {
            "formula": model.formula,
            # the fit statistics also at the top level, as the first versions printed them
            **statistics,
            "fit_statistics": statistics,
            "ddf": args.ddf,
            "fixed_effects": _records(fixed),
            "variance_components": _records(model.variance_components()),
            "random_effects": _records(model.random_effects()),
        }
        if intervals is not None:
            out["confint"] = {
                "method": args.confint,
                "level": args.level,
                "intervals": _records(intervals),
            }
        print(json.dumps(out, indent=2))


def _cmd_report(args: argparse.Namespace) -> None:
    from .toolbox.report import report

    model = _fit(args)
    path = report(model, args.output, title=args.title, nsim=args.nsim, progress=True)
    print(f"report written to {path}", file=sys.stderr)


def _cmd_demo(args: argparse.Namespace) -> None:
    from .demo import run

    run(Path(args.output), seed=args.seed, data_dir=Path(args.data) if args.data else None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mixedmodels", description="lme4-syntax mixed models from the command line."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def model_arguments(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("formula", help='lme4 formula, e.g. "y ~ x + (1 | g)"')
        sub.add_argument("--data", required=True, help="CSV, TSV or Parquet file")
        sub.add_argument(
            "--levels",
            metavar="LEVELS.json",
            help="factor levels in R's order (first = reference): {column: [levels]}, or "
            "{dataset: {column: [levels]}} keyed by the data file's stem",
        )
        sub.add_argument(
            "--factor",
            action="append",
            metavar="COL=A,B,C",
            help="a factor and its levels in order (repeatable; overrides --levels)",
        )
        sub.add_argument("--weights", metavar="COLUMN", help="prior weights column")
        sub.add_argument("--offset", metavar="COLUMN", help="offset column (linear predictor)")
        sub.add_argument(
            "--family",
            default=None,
            help="GLMM family: binomial, poisson, Gamma, inverse_gaussian (default gaussian: lmer)",
        )
        sub.add_argument("--link", default=None, help="link function, e.g. probit, cloglog, log")
        sub.add_argument("--nagq", type=int, default=1, help="GLMM quadrature points (1: Laplace)")
        sub.add_argument("--ml", action="store_true", help="maximum likelihood instead of REML")

    fit = commands.add_parser("fit", help="fit a model and print its tables")
    model_arguments(fit)
    fit.add_argument("--format", choices=["text", "json", "csv"], default="text")
    fit.add_argument(
        "--ddf",
        choices=DDF_METHODS,
        default="normal",
        help="degrees of freedom of the fixed-effect tests (lmer: satterthwaite, kenward-roger)",
    )
    fit.add_argument(
        "--confint", choices=CONFINT_METHODS, default=None, help="add confidence intervals"
    )
    fit.add_argument("--level", type=float, default=0.95, help="interval coverage")
    fit.add_argument("--nsim", type=int, default=500, help="bootstrap replicates (--confint boot)")
    fit.add_argument("--seed", type=int, default=None, help="bootstrap seed")
    fit.set_defaults(run=_cmd_fit)

    rep = commands.add_parser("report", help="fit a model and write an HTML report")
    model_arguments(rep)
    rep.add_argument("-o", "--output", required=True, help="HTML file to write")
    rep.add_argument("--title", default=None)
    rep.add_argument("--nsim", type=int, default=500, help="REsim draws for the plots")
    rep.set_defaults(run=_cmd_report)

    demo = commands.add_parser(
        "demo", help="run the seed chapter (on the real data with --data, else simulated)"
    )
    demo.add_argument("-o", "--output", default="demo-output", help="folder for the outputs")
    demo.add_argument(
        "--data",
        default=None,
        metavar="DIR",
        help="folder with gpa.csv, pupils.csv, nurses.csv, speed_dating.csv and levels.json; "
        "a missing file falls back to the simulated data set",
    )
    demo.add_argument("--seed", type=int, default=2024)
    demo.set_defaults(run=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mixedmodels`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = _print_warning
            args.run(args)
    except (MixedModelsError, KeyError, ValueError) as error:
        # user mistakes (the library's validation raises MixedModelsError / ValueError)
        text = str(error).strip()
        message = text.splitlines()[0] if text else repr(error)
        print(f"mixedmodels: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mixedmodels: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a bug: still no traceback on the user's screen
        print(
            f"mixedmodels: error: unexpected {type(error).__name__}: {_one_line(error)} "
            "(please report it with the command that caused it)",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def main_exit() -> None:
    """Console-script entry point: run :func:`main` and exit with its status."""
    sys.exit(main())
