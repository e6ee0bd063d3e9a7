"""Tests of the simulated example data sets (mixedmodels.datasets)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mixedmodels import datasets

LEVELS_JSON = Path(__file__).resolve().parents[2] / "shared" / "data" / "levels.json"

COLUMNS = {
    "gpa": [
        "student",
        "occas",
        "gpa",
        "job",
        "sex",
        "highgpa",
        "admitted",
        "year",
        "semester",
        "occasion",
    ],
    "pupils": [
        "PUPIL",
        "primary_school_id",
        "secondary_school_id",
        "achievement",
        "sex",
        "ses",
        "primary_denominational",
        "secondary_denominational",
    ],
    "nurses": [
        "hospital",
        "ward",
        "wardid",
        "nurse",
        "age",
        "sex",
        "experience",
        "stress",
        "wardtype",
        "hospsize",
        "treatment",
    ],
    "speed_dating": [
        "iid",
        "sex",
        "samerace",
        "attractive_sc",
        "sincere_sc",
        "intelligent_sc",
        "decision",
    ],
}

CATEGORICAL = {
    "gpa": ["student", "occas", "job", "sex", "admitted", "semester"],
    "pupils": ["sex", "ses", "primary_denominational", "secondary_denominational"],
    "nurses": ["sex", "wardtype", "hospsize", "treatment"],
    "speed_dating": ["sex", "samerace", "decision"],
}

NAMES = sorted(COLUMNS)


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return {name: datasets.load(name, seed=0) for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_columns_and_dtypes(frames: dict[str, pd.DataFrame], name: str) -> None:
    df = frames[name]
    assert list(df.columns) == COLUMNS[name]
    for column in df.columns:
        if column in CATEGORICAL[name]:
            assert isinstance(df[column].dtype, pd.CategoricalDtype), column
            assert not df[column].cat.ordered, column
        else:
            assert pd.api.types.is_numeric_dtype(df[column]), column
            assert df[column].notna().all(), column


@pytest.mark.parametrize("name", NAMES)
def test_levels_match_levels_json(frames: dict[str, pd.DataFrame], name: str) -> None:
    if not LEVELS_JSON.exists():
        pytest.skip(f"{LEVELS_JSON} not available")
    expected = json.loads(LEVELS_JSON.read_text())[name]
    df = frames[name]
    for column, levels in expected.items():
        assert df[column].cat.categories.tolist() == levels, column
    assert set(expected) == set(CATEGORICAL[name])


def test_gpa_structure(frames: dict[str, pd.DataFrame]) -> None:
    df = frames["gpa"]
    assert df.shape == (1200, 10)
    assert df["student"].cat.categories.tolist() == [str(i) for i in range(1, 201)]
    assert (df.groupby("student", observed=True).size() == 6).all()
    assert df["occasion"].tolist()[:6] == [0, 1, 2, 3, 4, 5]
    assert (df["year"] == df["occasion"] // 2 + 1).all()
    assert (df["semester"].astype(str).astype(int) == df["occasion"] % 2 + 1).all()
    assert (df["occas"].cat.codes == df["occasion"]).all()
    per_student = df.groupby("student", observed=True)
    assert (per_student["sex"].nunique() == 1).all()
    assert (per_student["highgpa"].nunique() == 1).all()
    assert (per_student["admitted"].nunique(dropna=False) == 1).all()
    assert per_student["job"].nunique().max() > 1  # job varies by occasion
    assert df["gpa"].between(1, 4).all()
    assert df["highgpa"].between(2, 4).all()
    # gpa rises over the semesters, by about 0.1 per semester
    means = df.groupby("occasion")["gpa"].mean()
    slope = np.polyfit(means.index, means.to_numpy(), 1)[0]
    assert 0.05 < slope < 0.16
    assert 2.4 < means.iloc[0] < 2.8


def test_pupils_crossed(frames: dict[str, pd.DataFrame]) -> None:
    df = frames["pupils"]
    assert df.shape == (1000, 8)
    assert df["PUPIL"].tolist() == list(range(1, 1001))
    assert set(df["primary_school_id"]) == set(range(1, 51))
    assert df["secondary_school_id"].between(1, 30).all()
    feeds = df.groupby("primary_school_id")["secondary_school_id"].nunique()
    assert (feeds > 1).mean() > 0.9
    assert feeds.median() > 5
    assert (df.groupby("primary_school_id")["primary_denominational"].nunique() == 1).all()
    assert (df.groupby("secondary_school_id")["secondary_denominational"].nunique() == 1).all()
    assert 5.8 < df["achievement"].mean() < 6.9


def test_nurses_nested(frames: dict[str, pd.DataFrame]) -> None:
    df = frames["nurses"]
    assert df.shape == (1000, 11)
    assert (df.groupby("wardid")["hospital"].nunique() == 1).all()
    assert (df["wardid"] == df["hospital"] * 10 + df["ward"]).all()
    assert sorted(df["ward"].unique()) == [1, 2, 3, 4]
    assert df["wardid"].nunique() == 100
    assert (df.groupby("wardid").size() == 10).all()
    assert (df.groupby("wardid")[["treatment", "wardtype"]].nunique() == 1).all().all()
    assert (df.groupby("hospital")["hospsize"].nunique() == 1).all()
    # treatment is randomised within hospital: both arms in every hospital
    assert (df.groupby("hospital")["treatment"].nunique() == 2).all()
    assert df["stress"].between(1, 7).all()
    assert df["age"].between(18, 70).all()
    assert (df["experience"] >= 0).all()
    assert (df["experience"] < df["age"]).all()


def test_nurses_many_wards_ids_unique() -> None:
    df = datasets.nurses(seed=2, n_hospitals=3, wards_per_hospital=12, nurses_per_ward=2)
    assert df.shape == (72, 11)
    assert df["wardid"].nunique() == 36
    assert (df.groupby("wardid")["hospital"].nunique() == 1).all()


def test_speed_dating_structure(frames: dict[str, pd.DataFrame]) -> None:
    df = frames["speed_dating"]
    assert df.shape == (8000, 7)
    assert (df.groupby("iid").size() == 16).all()
    assert (df.groupby("iid")["sex"].nunique() == 1).all()
    for column in ["attractive_sc", "sincere_sc", "intelligent_sc"]:
        assert abs(df[column].mean()) < 1e-9
        assert 2 < df[column].std() < 5
    share_yes = (df["decision"] == "Yes").mean()
    assert 0.3 < share_yes < 0.55


@pytest.mark.parametrize("name", NAMES)
def test_seed_reproducible(frames: dict[str, pd.DataFrame], name: str) -> None:
    pd.testing.assert_frame_equal(datasets.load(name, seed=0), frames[name])
    other = datasets.load(name, seed=1)
    assert not other.equals(frames[name])


@pytest.mark.parametrize(
    ("name", "kwargs", "shape"),
    [
        ("gpa", {"n_students": 7}, (42, 10)),
        ("pupils", {"n_pupils": 120, "n_primary": 12, "n_secondary": 5}, (120, 8)),
        ("nurses", {"n_hospitals": 3, "wards_per_hospital": 2, "nurses_per_ward": 5}, (30, 11)),
        ("speed_dating", {"n_raters": 9, "dates_per_rater": 4}, (36, 7)),
    ],
)
def test_sizes_follow_arguments(name: str, kwargs: dict[str, int], shape: tuple[int, int]) -> None:
    df = getattr(datasets, name)(seed=5, **kwargs)
    assert df.shape == shape
    if name == "gpa":
        assert df["student"].cat.categories.tolist() == [str(i) for i in range(1, 8)]
    elif name == "pupils":
        assert df["primary_school_id"].nunique() == 12
        assert df["secondary_school_id"].max() <= 5
    elif name == "nurses":
        assert df["hospital"].nunique() == 3 and df["wardid"].nunique() == 6
    else:
        assert df["iid"].nunique() == 9


def test_seed_none_gives_data() -> None:
    assert datasets.gpa(seed=None, n_students=3).shape == (18, 10)


def test_load_dispatch_and_errors() -> None:
    pd.testing.assert_frame_equal(datasets.load("Speed-Dating", seed=3), datasets.speed_dating(3))
    with pytest.raises(ValueError, match="Valid names: 'gpa', 'nurses', 'pupils', 'speed_dating'"):
        datasets.load("sleepstudy")
    with pytest.raises(ValueError, match="n_students"):
        datasets.gpa(n_students=0)
