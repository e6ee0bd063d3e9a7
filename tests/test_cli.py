"""The mixedmodels command: fit, report and demo, and one-line errors for user mistakes."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pandas as pd
import pytest

from mixedmodels.cli import main

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
    assert "<img" in text and "http" not in text.lower()


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
def test_demo_command(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path)]) == 0
    html = (tmp_path / "report.html").read_text()
    assert html.count("<img") >= 4 and "http" not in html.lower()
    markdown = (tmp_path / "report.md").read_text()
    for section in ("20.2.3", "REsim", "predictInterval", "lmlist", "20.4", "20.5", "20.9"):
        assert section in markdown
    assert len(list(tmp_path.glob("*.png"))) >= 8
    assert len(list(tmp_path.glob("*.csv"))) >= 20


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
