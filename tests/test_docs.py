"""The documentation site builds with zero warnings and every executed cell passing, and its
API reference covers every public name and every public method of the fitted models."""

from __future__ import annotations

import functools
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import mixedmodels as mm

from .conftest import ROOT

pytest.importorskip("sphinx")
pytest.importorskip("myst_nb")
pytestmark = pytest.mark.slow

#: the chapter's numbered sections (20.2.1-20.2.3 share one page section)
SEED_SECTIONS = (
    "20.1", "20.2", "20.2.1", "20.2.4", "20.2.5", "20.2.6", "20.3", "20.4", "20.5", "20.5.1",
    "20.6", "20.6.1", "20.6.2", "20.7", "20.8", "20.8.1", "20.9",
)  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            str(ROOT / "docs"),
            str(out),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert build.returncode == 0, f"docs build failed:\n{build.stdout}\n{build.stderr}"
    return out


def _ids(page: Path) -> set[str]:
    return set(re.findall(r'id="([^"]+)"', page.read_text()))


def test_every_public_name_is_in_the_api_reference(site):
    ids = _ids(site / "api.html")
    missing = [
        name
        for name in mm.__all__
        if f"mixedmodels.{name}" not in ids and f"module-mixedmodels.{name}" not in ids
    ]
    assert not missing


@pytest.mark.parametrize(
    "cls", [mm.LinearMixedModel, mm.GeneralizedLinearMixedModel, mm.LinearModel]
)
def test_every_public_method_of_the_models_is_documented(site, cls):
    ids = _ids(site / "api.html")
    public = [name for name, _ in inspect.getmembers(cls) if not name.startswith("_")]
    missing = [name for name in public if f"mixedmodels.{cls.__name__}.{name}" not in ids]
    assert not missing


def test_every_seed_section_has_its_page_section(site):
    text = (site / "chapter.html").read_text()
    headings = re.findall(r"<h[23][^>]*>(.*?)<", text)
    numbers = {h.split()[0].rstrip(".") for h in headings if h[:2] == "20"}
    numbers |= {part for h in headings for part in re.findall(r"20\.\d+(?:\.\d+)?", h)}
    assert not [s for s in SEED_SECTIONS if s not in numbers]


def test_chapter_page_says_which_data_it_ran_on(site):
    text = (site / "chapter.html").read_text()
    assert "This page ran on the chapter" in text or "simulated data sets" in text


def _documented(member: object) -> bool:
    if isinstance(member, (staticmethod, classmethod)):
        member = member.__func__
    return bool((inspect.getdoc(member) or "").strip())


def test_every_public_name_and_member_has_a_docstring():
    """The API reference shows docstrings: every name in ``mm.__all__`` and every public
    method or property of its classes has one (a member without one is an empty entry)."""
    missing = [name for name in mm.__all__ if not _documented(getattr(mm, name))]
    for name in mm.__all__:
        cls = getattr(mm, name)
        if not inspect.isclass(cls):
            continue
        for attr in dir(cls):
            member = inspect.getattr_static(cls, attr)
            kinds = (property, functools.cached_property, classmethod)
            is_member = callable(member) or isinstance(member, kinds)
            if not attr.startswith("_") and is_member and not _documented(member):
                missing.append(f"{name}.{attr}")
    assert not missing, f"no docstring: {missing}"
