"""Progress bars on the long loops: on when forced, off when asked, automatic by default
(on in a terminal or a notebook, off in pipes, logs and this test suite)."""

from __future__ import annotations

import io

import pytest

import mixedmodels as mm
from mixedmodels._progress import ProgressArgumentError, wants_progress


@pytest.fixture(scope="module")
def small():
    return mm.lmer("gpa ~ occasion + (1 | student)", mm.datasets.gpa(seed=4, n_students=30))


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_automatic_follows_the_terminal(monkeypatch):
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert wants_progress(None) is False
    monkeypatch.setattr("sys.stderr", _Terminal())
    assert wants_progress(None) is True
    assert wants_progress(False) is False and wants_progress(True) is True
    with pytest.raises(ProgressArgumentError, match="progress: expecting True, False or None"):
        wants_progress("yes")


@pytest.mark.parametrize(
    ("call", "label"),
    [
        (lambda m, p: m.profile(parm="sigma", progress=p), "profile"),
        (lambda m, p: m.confint(parm="sigma", progress=p), "profile"),
        (lambda m, p: m.bootstrap(3, seed=1, progress=p), "bootstrap"),
        (lambda m, p: m.predict_interval(nsim=20, seed=1, progress=p), "predict_interval"),
    ],
    ids=["profile", "confint", "bootstrap", "predict_interval"],
)
def test_long_loops_show_a_bar_only_when_wanted(small, capsys, call, label):
    call(small, True)
    assert label in capsys.readouterr().err
    call(small, False)
    assert capsys.readouterr().err == ""
    call(small, None)  # automatic: stderr is captured here, not a terminal
    assert capsys.readouterr().err == ""
