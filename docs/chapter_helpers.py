"""Data and R reference values for the executed pages of the documentation.

The chapter's data are read from ``../shared/data`` (beside the repository) when present,
with ``levels.json`` for R's level order; otherwise the package's simulated sets are used.
The R values behind the chapter's tables come from ``../shared/seed/reference.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from mixedmodels.demo import load_datasets

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATA_DIR = SHARED / "data"
REFERENCE_FILE = SHARED / "seed" / "reference.json"


def chapter_data() -> tuple[dict[str, pd.DataFrame], str]:
    """The four data sets and a sentence saying where they came from."""
    real = DATA_DIR.is_dir()
    data, sources = load_datasets(DATA_DIR if real else None, seed=2024)
    if all(not s.startswith("simulated") for s in sources.values()):
        note = f"This page ran on the chapter's own data ({DATA_DIR.name}/ beside the project)."
    else:
        note = (
            "The chapter's data were not found beside the project, so this page ran on the "
            "package's simulated data sets: the numbers differ from R's column."
        )
    return data, note


def reference() -> dict:
    """R's values (lme4 1.1-31, nlme 3.1-162, glmmTMB 1.1.5), or {} when not available."""
    if not REFERENCE_FILE.is_file():
        return {}
    return json.loads(REFERENCE_FILE.read_text())


def _r_term(name: str) -> str:
    return "Intercept" if name == "(Intercept)" else name


def fixed_beside_r(model, key: str, ref: dict) -> pd.DataFrame:
    """Our fixed effects and SEs next to R's for the chapter's model ``key``."""
    ours = model.fixed_effects().set_index("term")[["value", "se"]]
    if key not in ref:
        return ours
    theirs = pd.DataFrame(ref[key]["fixed"])
    theirs["term"] = theirs["term"].map(_r_term)
    theirs = theirs.set_index("term")[["estimate", "se"]]
    theirs.columns = ["R value", "R se"]
    return ours.join(theirs)


def varcorr_beside_r(model, key: str, ref: dict) -> pd.DataFrame:
    """Our ``varcorr()`` next to R's ``as.data.frame(VarCorr())``."""
    ours = model.varcorr()[["group", "var1", "var2", "sdcor"]].fillna("")
    if key not in ref or "varcorr" not in ref[key]:
        return ours
    theirs = pd.DataFrame(ref[key]["varcorr"]).rename(columns={"grp": "group"})
    theirs = theirs[["group", "var1", "var2", "sdcor"]].rename(columns={"sdcor": "R sdcor"})
    return ours.merge(theirs.fillna(""), on=["group", "var1", "var2"], how="left")
