"""The mixedmodels command: fit, report and demo, and one-line errors for user mistakes."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.cli import main
from mixedmodels.datasets.files import apply_levels, read_levels

from .conftest import SHARED

GPA = SHARED / "data" / "gpa.csv"
FORMULA = "gpa ~ occasion + (1 | student)"


@pytest.fixture(scope="module")
def gpa_csv():
    if not GPA.exists():
        pytest.skip("the seed's gpa.csv is not available")
    return str(GPA)


def test_fit_json_matches_library(gpa_csv, seed_models, capsys):
    assert main(["fit", FORMULA, "--data", gpa_csv, "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    m = seed_models["gpa_mixed"]
    assert out["nobs"] == 1200 and out["ngroups"] == {"student": 200}
    assert out["deviance"] == pytest.approx(m.deviance, rel=1e-10)
    assert [row["term"] for row in out["fixed_effects"]] == ["Intercept", "occasion"]
    assert out["fixed_effects"][1]["value"] == pytest.approx(m.fixef["occasion"], rel=1e-8)


def test_fit_text_csv_and_ml(gpa_csv, capsys):
    assert main(["fit", FORMULA, "--data", gpa_csv]) == 0
    assert "Random effects" in capsys.readouterr().out
    assert main(["fit", FORMULA, "--data", gpa_csv, "--format", "csv", "--ml"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert table["term"].tolist() == ["Intercept", "occasion"]


def test_fit_parquet(gpa_csv, tmp_path, capsys):
    pytest.importorskip("pyarrow")
    path = tmp_path / "gpa.parquet"
    pd.read_csv(gpa_csv).to_parquet(path)
    assert main(["fit", FORMULA, "--data", str(path), "--format", "csv"]) == 0


def test_report_command(gpa_csv, tmp_path, capsys):
    out = tmp_path / "sub" / "gpa.html"
    assert main(["report", FORMULA, "--data", gpa_csv, "-o", str(out), "--nsim", "100"]) == 0
    text = out.read_text()
    # the embedded images' base64 may spell "http" by chance (as in test_report)
    without_images = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)
    assert "<img" in text and "http" not in without_images.lower()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fit", FORMULA, "--data", "no/such/file.csv"], "data file 'no/such/file.csv' not found"),
        (["fit", "gpa ~ occasion + (1 | student", "--data", None], "Unclosed '('"),
        (["fit", "gpa ~ occasion + (1 | nope)", "--data", None], "Unknown column 'nope'"),
    ],
    ids=["missing-file", "bad-formula", "unknown-column"],
)
def test_user_mistakes_are_one_line(gpa_csv, capsys, argv, message):
    argv = [gpa_csv if a is None else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mixedmodels: error: ")
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_family_without_glmer_or_with_bad_response(gpa_csv, capsys):
    # either glmer is missing ("not available yet") or it refuses gpa as counts: one line each
    assert main(["fit", FORMULA, "--data", gpa_csv, "--family", "poisson"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mixedmodels: error: ") and err.count("\n") == 1


def test_module_entry_point_no_traceback():
    result = subprocess.run(
        [sys.executable, "-m", "mixedmodels", "fit", FORMULA, "--data", "missing.csv"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr == "mixedmodels: error: data file 'missing.csv' not found.\n"


@pytest.mark.slow
def test_demo_command(tmp_path, capsys, reference):
    # a data folder with the chapter's gpa only: gpa is read from it (with levels.json), the
    # other data sets fall back to the simulated ones
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("gpa.csv", "levels.json"):
        source = SHARED / "data" / name
        if not source.exists():
            pytest.skip(f"the seed's {name} is not available")
        (folder / name).write_bytes(source.read_bytes())
    assert main(["demo", "-o", str(tmp_path), "--data", str(folder)]) == 0
    html = (tmp_path / "report.html").read_text()
    # the embedded images' base64 may spell "http" by chance (as in test_report)
    without_images = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html)
    assert html.count("<img") >= 4 and "http" not in without_images.lower()
    markdown = (tmp_path / "report.md").read_text()
    for section in ("20.2.3", "REsim", "predictInterval", "lmlist", "20.4", "20.5", "20.9"):
        assert section in markdown
    assert len(list(tmp_path.glob("*.png"))) >= 8
    assert len(list(tmp_path.glob("*.csv"))) >= 20
    assert f"gpa ({folder / 'gpa.csv'})" in markdown
    assert "pupils (simulated: mixedmodels.datasets.pupils(seed=2024))" in markdown
    # each Python call is shown above its result
    call = '```python\ngpa_mixed = lmer("gpa ~ occasion + (1 | student)", gpa)\n```'
    assert markdown.index(call) < markdown.index("**gpa_mixed fixed effects**")
    assert "```python\ngpa_mixed.fixed_effects()\n```" in markdown
    # on the chapter's gpa the numbers are the chapter's (lme4's)
    (table,) = tmp_path.glob("*_gpa_mixed_fixed_effects.csv")
    fixed = pd.read_csv(table)
    expected = [row["estimate"] for row in reference["gpa_mixed"]["fixed"]]
    assert fixed["value"].tolist() == pytest.approx(expected, rel=1e-6)


def test_report_shows_progress_on_stderr(tmp_path, capsys):
    import mixedmodels as mm

    data = tmp_path / "gpa.csv"
    mm.datasets.gpa(seed=3, n_students=40).to_csv(data, index=False)
    out = tmp_path / "r.html"
    formula = "gpa ~ occasion + (1 | student)"
    assert main(["report", formula, "--data", str(data), "-o", str(out)]) in (0, None)
    err = capsys.readouterr().err
    assert "report figures" in err and "report written to" in err
    assert out.exists()


# -- the options of issue 16: levels, weights, offset, family/link, ddf, confint ----------
LEVELS = SHARED / "data" / "levels.json"
SEX = "gpa ~ occasion + sex + (1 | student)"


def _json(capsys, argv) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def _one_line_error(capsys, argv, message: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mixedmodels: error: ") and err.count("\n") == 1, err
    assert message in err


def test_levels_file_sets_r_reference_level(gpa_csv, gpa, capsys):
    base = ["fit", SEX, "--data", gpa_csv, "--format", "json"]
    alphabetical = _json(capsys, base)
    assert [r["term"] for r in alphabetical["fixed_effects"]][-1] == "sexmale"
    with_levels = _json(capsys, [*base, "--levels", str(LEVELS)])
    assert [r["term"] for r in with_levels["fixed_effects"]][-1] == "sexfemale"
    expected = mm.lmer(SEX, gpa)  # the seed's data with levels.json applied
    assert with_levels["fixed_effects"][-1]["value"] == pytest.approx(
        expected.fixef["sexfemale"], rel=1e-8
    )


def test_factor_option_overrides_levels(gpa_csv, capsys):
    argv = ["fit", SEX, "--data", gpa_csv, "--format", "json", "--levels", str(LEVELS)]
    out = _json(capsys, [*argv, "--factor", "sex=female,male"])
    assert [r["term"] for r in out["fixed_effects"]][-1] == "sexmale"
    _one_line_error(capsys, [*argv, "--factor", "sex=female"], "not among its levels")
    _one_line_error(capsys, [*argv, "--factor", "sex"], "expecting COLUMN=LEVEL1,LEVEL2")
    _one_line_error(capsys, [*argv, "--factor", "nope=a,b"], "'nope', which is not a column")


def test_levels_file_problems_are_one_line(gpa_csv, tmp_path, capsys):
    argv = ["fit", FORMULA, "--data", gpa_csv, "--levels"]
    _one_line_error(capsys, [*argv, str(tmp_path / "none.json")], "levels file")
    other = tmp_path / "levels.json"
    other.write_text(json.dumps({"pupils": {"sex": ["male", "female"]}}))
    _one_line_error(capsys, [*argv, str(other)], "not for 'gpa'")


@pytest.fixture(scope="module")
def weighted_csv(tmp_path_factory, gpa):
    frame = gpa.copy()
    rng = np.random.default_rng(5)
    frame["w"] = rng.uniform(0.5, 2.0, len(frame))
    frame["off"] = 0.1 * frame["occasion"]
    path = tmp_path_factory.mktemp("cli") / "gpa.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_weights_and_offset_columns(weighted_csv, capsys):
    path, frame = weighted_csv
    base = ["fit", FORMULA, "--data", str(path), "--format", "json"]
    weighted = _json(capsys, [*base, "--weights", "w"])
    assert weighted["deviance"] == pytest.approx(
        mm.lmer(FORMULA, frame, weights="w").deviance, rel=1e-9
    )
    shifted = _json(capsys, [*base, "--offset", "off"])
    plain = mm.lmer(FORMULA, frame)
    # an offset of 0.1 * occasion lowers the occasion slope by exactly 0.1
    slope = {r["term"]: r["value"] for r in shifted["fixed_effects"]}["occasion"]
    assert slope == pytest.approx(plain.fixef["occasion"] - 0.1, abs=1e-6)
    _one_line_error(capsys, [*base, "--weights", "nope"], "nope")


@pytest.fixture(scope="module")
def dating_csv(tmp_path_factory):
    source = SHARED / "data" / "speed_dating.csv"
    if not source.exists():
        pytest.skip("the seed's speed_dating.csv is not available")
    path = tmp_path_factory.mktemp("cli") / "speed_dating.csv"
    frame = pd.read_csv(source)
    frame[frame["iid"].isin(frame["iid"].unique()[:120])].to_csv(path, index=False)
    return path


def test_family_and_link(dating_csv, capsys):
    formula = "decision ~ samerace + (1 | iid)"
    argv = ["fit", formula, "--data", str(dating_csv), "--levels", str(LEVELS), "--format"]
    out = _json(capsys, [*argv, "json", "--family", "binomial", "--link", "probit"])
    assert out["fit_statistics"]["family"] == "binomial"
    assert out["fit_statistics"]["link"] == "probit" and "sigma" not in out
    data = apply_levels(pd.read_csv(dating_csv), read_levels(LEVELS, "speed_dating"))
    expected = mm.glmer(formula, data, family="binomial", link="probit")
    assert [r["term"] for r in out["fixed_effects"]] == ["Intercept", "sameraceYes"]
    assert out["fixed_effects"][1]["value"] == pytest.approx(
        expected.fixef["sameraceYes"], rel=1e-6
    )
    assert {"z", "p_value"} <= set(out["fixed_effects"][0])
    assert main([*argv, "text", "--family", "binomial"]) == 0
    assert "Family: binomial  ( logit )" in capsys.readouterr().out
    _one_line_error(capsys, [*argv, "json", "--link", "probit"], "--link probit needs a GLMM")
    _one_line_error(
        capsys, [*argv, "json", "--family", "binomial", "--ddf", "satterthwaite"], "Wald z"
    )


@pytest.mark.parametrize("ddf", ["satterthwaite", "kenward-roger"])
def test_ddf(gpa_csv, seed_models, capsys, ddf):
    out = _json(capsys, ["fit", FORMULA, "--data", gpa_csv, "--format", "json", "--ddf", ddf])
    expected = seed_models["gpa_mixed"].fixed_effects(ddf=ddf)
    assert out["ddf"] == ddf
    assert [r["df"] for r in out["fixed_effects"]] == pytest.approx(
        expected["df"].tolist(), rel=1e-8
    )
    assert main(["fit", FORMULA, "--data", gpa_csv, "--ddf", ddf]) == 0
    assert f"({ddf} degrees of freedom)" in capsys.readouterr().out


def test_confint(gpa_csv, seed_models, capsys):
    argv = ["fit", FORMULA, "--data", gpa_csv, "--format", "json", "--confint"]
    wald = _json(capsys, [*argv, "wald", "--level", "0.9"])["confint"]
    expected = seed_models["gpa_mixed"].confint(method="wald", level=0.9)
    assert wald["method"] == "wald" and wald["level"] == 0.9
    rows = {r["parameter"]: r for r in wald["intervals"]}
    assert list(rows) == list(expected.index)
    assert rows["occasion"]["lower"] == pytest.approx(expected.loc["occasion", "lower"])
    profile = _json(capsys, [*argv, "profile"])["confint"]["intervals"]
    sd = {r["parameter"]: r for r in profile}["sd_(Intercept)|student"]
    assert 0 < sd["lower"] < seed_models["gpa_mixed"].variance_components()["sd"].iloc[0]
    assert main(["fit", FORMULA, "--data", gpa_csv, "--confint", "boot", "--nsim", "5"]) == 0
    assert "Confidence intervals (boot, level 0.95)" in capsys.readouterr().out


def test_json_has_random_effects_and_variance_components(gpa_csv, seed_models, capsys):
    out = _json(capsys, ["fit", FORMULA, "--data", gpa_csv, "--format", "json"])
    m = seed_models["gpa_mixed"]
    assert len(out["random_effects"]) == len(m.random_effects()) == 200
    assert set(out["random_effects"][0]) == set(m.random_effects().columns)
    assert len(out["variance_components"]) == 2  # student intercept, residual
    stats = out["fit_statistics"]
    assert stats["loglik"] == pytest.approx(m.loglik) and stats["npar"] == m.npar
    assert stats["df_resid"] == 1200 - m.npar


def test_warnings_are_one_clean_line_each(capsys):
    nurses = SHARED / "data" / "nurses.csv"
    if not nurses.exists():
        pytest.skip("the seed's nurses.csv is not available")
    argv = ["fit", "stress ~ sex + (0 + sex | hospital)", "--data", str(nurses)]
    assert main([*argv, "--levels", str(LEVELS), "--format", "csv"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err and all(line.startswith("mixedmodels: warning: ") for line in err)
    assert any("SingularFitWarning: boundary (singular) fit" in line for line in err)
    assert not any("warnings.warn" in line or ".py" in line for line in err)


def test_unexpected_failure_is_one_line_with_status_1(gpa_csv, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug\nsecond line")

    monkeypatch.setattr("mixedmodels.fitting.lmer.lmer", broken)
    assert main(["fit", FORMULA, "--data", gpa_csv]) == 1
    err = capsys.readouterr().err
    assert err == (
        "mixedmodels: error: unexpected RuntimeError: simulated bug second line "
        "(please report it with the command that caused it)\n"
    )
