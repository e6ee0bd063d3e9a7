"""Covariance-structure rows of varcorr / variance_components / summary (issue 10, smaller):
one row per distinct parameter, as glmmTMB prints and mixedup's extract_vc tabulates."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import mixedmodels as mm


@pytest.fixture(scope="module")
def fits(gpa):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            s: mm.lmer(f"gpa ~ occasion + {s}(0 + occas | student)", gpa, reml=False)
            for s in ("ar1", "cs", "diag", "toep")
        }


def test_ar1_has_one_variance_and_its_lag1_correlation(fits):
    m = fits["ar1"]
    vc = m.varcorr()
    term = vc[vc["group"] == "student"]
    assert list(term["var2"].isna()) == [True, False]
    cov = m._term_covariances()[0]
    assert term["vcov"].iloc[0] == pytest.approx(cov[0, 0])
    np.testing.assert_allclose(np.diag(cov), cov[0, 0])  # the one variance is every column's
    assert term["sdcor"].iloc[1] == pytest.approx(cov[0, 1] / cov[0, 0])
    comp = m.variance_components()
    assert list(comp["group"]) == ["student", "Residual"]
    assert comp["var_prop"].sum() == pytest.approx(1.0)
    text = m.summary()
    assert text.count("occasyear") == 1 and "(ar1)" in text


def test_diag_lists_no_covariances_and_cs_one_correlation(fits):
    diag = fits["diag"].varcorr()
    assert diag["var2"].isna().all() and len(diag) == 7  # six variances and the residual
    cs = fits["cs"].varcorr()
    student = cs[cs["group"] == "student"]
    assert student["var2"].isna().sum() == 6 and student["var2"].notna().sum() == 1
    assert "(cs)" in fits["cs"].summary()
    toep = fits["toep"].varcorr()
    assert toep["var2"].notna().sum() == 15  # glmmTMB prints toep's whole correlation matrix
