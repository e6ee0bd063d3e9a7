"""The benchmark cases (issue 13's table) and the CSV each engine reads.

Every engine (mixedmodels, lme4, glmm) reads the same CSV from ``benchmarks/.cache`` in its
own process, so times and peak memory are comparable.  Simulated data sets are written
there from fixed seeds; InstEval (lme4) and Chem97 (mlmRev) are exported by
``export_r_data.R`` when R is installed.  The cache is never committed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = ROOT.parent / "shared"
CACHE = HERE / ".cache"


@dataclass
class Case:
    """One row of the table.

    ``factors`` are the columns every engine reads as categorical (grouping factors
    and string columns); ``peers`` the engines that fit this model besides ours.
    """

    name: str
    formula: str
    make: Callable[[], pd.DataFrame]
    repeats: int
    factors: tuple[str, ...]
    reml: bool = True
    family: str = "gaussian"
    peers: tuple[str, ...] = ("lme4", "glmm")

    @property
    def csv(self) -> Path:
        return CACHE / f"{self.name.replace(' ', '_')}.csv"

    def ensure_csv(self) -> Path | None:
        """Write the CSV when it is missing; None when its source is unavailable."""
        if not self.csv.exists():
            data = self.make()
            if data is None:
                return None
            CACHE.mkdir(exist_ok=True)
            data.to_csv(self.csv, index=False)
        return self.csv


def _fixture(file: str, name: str) -> pd.DataFrame:
    fixture = json.loads((ROOT / "tests" / "fixtures" / file).read_text())
    return pd.DataFrame(fixture["data"][name]["columns"])


def _seed(name: str) -> pd.DataFrame:
    return pd.read_csv(SHARED / "data" / f"{name}.csv")


def _verbagg() -> pd.DataFrame:
    data = _fixture("lme4_glmm.json", "VerbAgg")
    data["r2"] = (data["r2"] == "Y").astype(int)  # lme4's success is the second level, Y
    return data


def _speed_dating() -> pd.DataFrame:
    data = _seed("speed_dating")
    columns = ["decision", "sex", "samerace", "attractive_sc", "sincere_sc", "intelligent_sc"]
    data = data.dropna(subset=columns)[[*columns, "iid"]].copy()
    data["decision"] = (data["decision"] == "Yes").astype(int)
    return data


def _exported(name: str) -> Callable[[], pd.DataFrame | None]:
    """A data set R writes (lme4's InstEval, mlmRev's Chem97), or None without R."""

    def make() -> pd.DataFrame | None:
        path = CACHE / f"{name}.csv"
        if not path.exists() and shutil.which("Rscript"):
            subprocess.run(["Rscript", str(HERE / "export_r_data.R"), str(CACHE)], check=False)
        return pd.read_csv(path) if path.exists() else None

    return make


def _slopes_1m() -> pd.DataFrame:
    rng = np.random.default_rng(20_000)
    groups, per = 20_000, 50
    g = np.repeat(np.arange(groups), per)
    x = rng.normal(size=g.size)
    b0 = rng.normal(scale=0.8, size=groups)
    b1 = rng.normal(scale=0.3, size=groups)
    y = 1.0 + 0.5 * x + b0[g] + b1[g] * x + rng.normal(size=g.size)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def _crossed_500k() -> pd.DataFrame:
    rng = np.random.default_rng(500)
    n = 500_000
    a = rng.integers(0, 5_000, size=n)
    b = rng.integers(0, 500, size=n)
    x = rng.normal(size=n)
    y = 2.0 + 0.3 * x + rng.normal(scale=0.7, size=5_000)[a] + rng.normal(scale=0.4, size=500)[b]
    y = y + rng.normal(size=n)
    return pd.DataFrame({"y": y, "x": x, "a": a, "b": b})


def _gpa_ar1() -> pd.DataFrame:
    return _seed("gpa")[["gpa", "occasion", "occas", "student"]]


CASES = [
    Case(
        "sleepstudy",
        "Reaction ~ Days + (Days | Subject)",
        lambda: _fixture("lme4_lmm.json", "sleepstudy"),
        30,
        ("Subject",),
    ),
    Case(
        "gpa slopes",
        "gpa ~ occasion + (1 + occasion | student)",
        lambda: _seed("gpa")[["gpa", "occasion", "student"]],
        30,
        ("student",),
    ),
    Case(
        "pupils crossed",
        "achievement ~ sex + ses + (1 | primary_school_id) + (1 | secondary_school_id)",
        lambda: _seed("pupils"),
        20,
        ("primary_school_id", "secondary_school_id", "sex", "ses"),
    ),
    Case(
        "Chem97 nested",
        "score ~ gcsecnt + (1 | lea/school)",
        _exported("Chem97"),
        5,
        ("lea", "school"),
    ),
    Case(
        "InstEval",
        "y ~ service + (1 | s) + (1 | d) + (1 | dept)",
        _exported("InstEval"),
        3,
        ("s", "d", "dept"),
    ),
    Case("1M slopes", "y ~ x + (x | g)", _slopes_1m, 3, ("g",)),
    Case("500k crossed", "y ~ x + (1 | a) + (1 | b)", _crossed_500k, 3, ("a", "b")),
    Case(
        "VerbAgg glmer",
        "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)",
        _verbagg,
        5,
        ("Gender", "btype", "situ", "id", "item"),
        family="binomial",
    ),
    Case(
        "speed dating glmer",
        "decision ~ sex + samerace + attractive_sc + sincere_sc + intelligent_sc + (1 | iid)",
        _speed_dating,
        10,
        ("sex", "samerace", "iid"),
        family="binomial",
    ),
    Case(
        "gpa ar1 (glmmTMB)",
        "gpa ~ occasion + ar1(0 + occas | student) + (1 | student)",
        _gpa_ar1,
        5,
        ("occas", "student"),
        reml=False,
        peers=("glmmTMB",),
    ),
]
