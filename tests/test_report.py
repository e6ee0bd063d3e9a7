"""The HTML report: structure, self-containment and (with chromium) a non-blank rendering."""

from __future__ import annotations

import re
import shutil
import subprocess

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
