"""The ``mixedmodels`` command: fit a model, write a report, run the seed demo.

Examples (shell)::

    mixedmodels fit "gpa ~ occasion + (1 | student)" --data gpa.csv --format json
    mixedmodels report "gpa ~ occasion + (1 + occasion | student)" --data gpa.csv -o gpa.html
    mixedmodels demo -o demo-output

Mistakes in the input (a missing file, a bad formula, an unknown column) print one line to
standard error and exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import MixedModelsError

EXIT_USAGE = 2


class CliError(Exception):
    """A user mistake, reported as one line."""


def _read_data(path: str) -> pd.DataFrame:
    file = Path(path)
    if not file.is_file():
        raise CliError(f"data file {path!r} not found.")
    suffix = file.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(file)
        if suffix in (".csv", ".txt", ""):
            return pd.read_csv(file)
        if suffix == ".tsv":
            return pd.read_csv(file, sep="\t")
    except ImportError as error:
        raise CliError(f"cannot read {path!r}: {error}") from None
    except (ValueError, OSError) as error:
        raise CliError(f"cannot read {path!r}: {error}") from None
    raise CliError(f"data file {path!r}: expecting a .csv or .parquet file.")


def _fit(args: argparse.Namespace) -> Any:
    from . import fit as fit_module

    data = _read_data(args.data)
    family = getattr(args, "family", None)
    if family not in (None, "gaussian"):
        import mixedmodels

        glmer = getattr(mixedmodels, "glmer", None)
        if glmer is None:
            raise CliError(f"{family} GLMMs are not available yet in this version of mixedmodels.")
        return glmer(args.formula, data, family=family)
    return fit_module.lmer(args.formula, data, reml=not args.ml)


def _records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records"))


def _cmd_fit(args: argparse.Namespace) -> None:
    model = _fit(args)
    if args.format == "text":
        print(model.summary())
    elif args.format == "csv":
        model.fixed_effects().to_csv(sys.stdout, index=False)
    else:
        out = {
            "formula": model.formula,
            "nobs": model.nobs,
            "ngroups": model.ngroups,
            "reml": bool(getattr(model, "reml", False)),
            "converged": bool(getattr(model, "converged", True)),
            "singular": bool(model.is_singular),
            "deviance": model.deviance,
            "loglik": model.loglik,
            "aic": model.aic,
            "bic": model.bic,
            "fixed_effects": _records(model.fixed_effects()),
            "variance_components": _records(model.variance_components()),
        }
        if hasattr(model, "sigma"):
            out["sigma"] = model.sigma
        print(json.dumps(out, indent=2))


def _cmd_report(args: argparse.Namespace) -> None:
    from .report import report

    model = _fit(args)
    path = report(model, args.output, title=args.title, nsim=args.nsim, progress=True)
    print(f"report written to {path}", file=sys.stderr)


def _cmd_demo(args: argparse.Namespace) -> None:
    from .demo import run

    run(Path(args.output), seed=args.seed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mixedmodels", description="lme4-syntax mixed models from the command line."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def model_arguments(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("formula", help='lme4 formula, e.g. "y ~ x + (1 | g)"')
        sub.add_argument("--data", required=True, help="CSV or Parquet file")
        sub.add_argument("--ml", action="store_true", help="maximum likelihood instead of REML")
        sub.add_argument("--family", default=None, help="GLMM family, e.g. binomial")

    fit = commands.add_parser("fit", help="fit a model and print its tables")
    model_arguments(fit)
    fit.add_argument("--format", choices=["text", "json", "csv"], default="text")
    fit.set_defaults(run=_cmd_fit)

    rep = commands.add_parser("report", help="fit a model and write an HTML report")
    model_arguments(rep)
    rep.add_argument("-o", "--output", required=True, help="HTML file to write")
    rep.add_argument("--title", default=None)
    rep.add_argument("--nsim", type=int, default=500, help="REsim draws for the plots")
    rep.set_defaults(run=_cmd_report)

    demo = commands.add_parser("demo", help="run the seed chapter on simulated data")
    demo.add_argument("-o", "--output", default="demo-output", help="folder for the outputs")
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
            args.run(args)
    except (CliError, MixedModelsError, KeyError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        print(f"mixedmodels: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as error:  # bad option values caught by the library's validation
        message = str(error).strip().splitlines()[0]
        print(f"mixedmodels: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def main_exit() -> None:
    """Console-script entry point: run :func:`main` and exit with its status."""
    sys.exit(main())
