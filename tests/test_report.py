"""The HTML report: structure, self-containment and (with chromium) a non-blank rendering."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest

import mixedmodels as mm


@pytest.fixture(scope="module")
def page(tmp_path_factory, seed_models):
    path = tmp_path_factory.mktemp("report") / "gpa.html"
    out = mm.report(seed_models["gpa_mixed2"], path, title="GPA", nsim=200)
    assert out == path
    return path


def test_report_structure(page):
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "gpa ~ occasion + (1 + occasion | student)" in text
    assert text.count("<table") == 3  # fixed effects, variance components, random effects
    for heading in ("Fixed effects", "Variance components", "Random effects", "Model equation"):
        assert heading in text
    images = re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) == 5  # caterpillar, shrinkage, fitted, marginal_cov, residuals
    assert r"\rho_{\alpha_{j}\beta_{1j}}" in text  # the equation
    # no external URL, no CDN (the embedded images' base64 may spell "http" by chance)
    without_images = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)
    assert not re.search(r"(src|href)\s*=\s*[\"']?https?:", without_images, re.I)
    assert "http" not in without_images.lower()
    assert "<script" not in text


def test_report_screenshot_not_blank(page, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed")
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,1800",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    from matplotlib.image import imread

    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (1800, 1280)
    # not blank: many distinct colours and a real share of non-background pixels
    background = np.array([0xFA, 0xFA, 0xFA]) / 255
    ink = np.mean(np.abs(pixels - background).sum(axis=-1) > 0.1)
    assert ink > 0.05
    assert len(np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 200


class _EquationParser(HTMLParser):
    """Collects the report's equation block: its elements and the text a reader sees."""

    def __init__(self):
        super().__init__()
        self.depth = 0  # inside <div class="equation">
        self.hidden = 0  # inside <annotation> (not rendered by browsers)
        self.tags: list[str] = []
        self.visible: list[str] = []

    def handle_starttag(self, tag, attrs):
        if self.depth:
            self.depth += 1
            self.tags.append(tag)
            self.hidden += tag == "annotation"
        elif tag == "div" and ("class", "equation") in attrs:
            self.depth = 1

    def handle_endtag(self, tag):
        if self.depth:
            self.depth -= 1
            self.hidden -= tag == "annotation"

    def handle_data(self, data):
        if self.depth and not self.hidden:
            self.visible.append(data)


def test_report_equation_is_rendered_markup_not_latex(page):
    parser = _EquationParser()
    parser.feed(page.read_text(encoding="utf-8"))
    assert parser.tags[0] == "math"
    for element in ("mtable", "msubsup", "mi", "mo"):
        assert element in parser.tags
    shown = "".join(parser.visible)
    assert "\\" not in shown and "{" not in shown and "$$" not in shown  # no LaTeX source
    for symbol in ("gpa", "occasion", "α", "β", "σ", "ρ", "∼"):
        assert symbol in shown
    # the only place LaTeX source appears is the (unrendered) annotation
    text = re.sub(r"<annotation .*?</annotation>", "", page.read_text(encoding="utf-8"), flags=re.S)
    assert "\\operatorname" not in text and "\\begin{aligned}" not in text


def test_report_figures_at_natural_size(page):
    text = page.read_text(encoding="utf-8")
    sizes = [
        (int(w), int(h)) for w, h in re.findall(r'<img [^>]*width="(\d+)" height="(\d+)"', text)
    ]
    assert len(sizes) == 5
    # one-panel plots (marginal covariance) are narrower than three-panel ones (residuals)
    assert min(w for w, _ in sizes) < 0.6 * max(w for w, _ in sizes)
    image_rule = text.split("figure img", 1)[1].split("}", 1)[0]
    assert re.search(r"(?<![-\w])width:\s*100%", image_rule) is None  # not stretched
