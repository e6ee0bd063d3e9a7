"""Shared fixtures: the seed's data sets (read from ../shared, never committed) and the
lme4 parity fixtures made by tools/make_fixtures.R."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest

import mixedmodels as mm

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FIXTURES = ROOT / "tests" / "fixtures"
#: the seed chapter's lmer fits in ../shared/seed/reference.json
SEED_LMM_KEYS = (
    "gpa_mixed",
    "gpa_mixed2",
    "pupils_crossed",
    "nurses_hierach",
    "nurses_hierach2",
    "nurses_nested",
)


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is not available (the seed's data live in ../shared)")
    return path


def load_seed_data(name: str) -> pd.DataFrame:
    """A seed data set with its factor levels in R's order (levels.json)."""
    frame = pd.read_csv(_require(SHARED / "data" / f"{name}.csv"))
    levels = json.loads((SHARED / "data" / "levels.json").read_text())[name]
    for column, order in levels.items():
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values.dtype):
            values = values.astype("Int64").astype(str).where(values.notna())
        frame[column] = pd.Categorical(values, categories=order)
    return frame


@pytest.fixture(scope="session")
def reference() -> dict:
    return json.loads(_require(SHARED / "seed" / "reference.json").read_text())


@pytest.fixture(scope="session")
def gpa() -> pd.DataFrame:
    return load_seed_data("gpa")


@pytest.fixture(scope="session")
def pupils() -> pd.DataFrame:
    return load_seed_data("pupils")


@pytest.fixture(scope="session")
def nurses() -> pd.DataFrame:
    return load_seed_data("nurses")


@pytest.fixture(scope="session")
def seed_models(gpa, pupils, nurses, reference) -> dict[str, mm.LinearMixedModel]:
    """The seed's LMMs, fitted once per test session."""
    data = {"gpa": gpa, "pupils": pupils, "nurses": nurses}
    models = {}
    for key in SEED_LMM_KEYS:
        with warnings.catch_warnings():
            warnings.simplefilter("error", mm.ConvergenceWarning)
            models[key] = mm.lmer(reference[key]["formula"], data[key.split("_")[0]])
    return models


def load_fixture(name: str) -> dict:
    return json.loads(_require(FIXTURES / name).read_text())


def fixture_frame(fixture: dict, dataset: str) -> pd.DataFrame:
    """Rebuild a data set stored in a fixture, factors with R's level order."""
    spec = fixture["data"][dataset]
    frame = pd.DataFrame(spec["columns"])
    for column, order in spec.get("levels", {}).items():
        frame[column] = pd.Categorical(
            frame[column].astype(str), categories=[str(v) for v in order]
        )
    return frame
