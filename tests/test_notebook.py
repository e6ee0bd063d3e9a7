"""A notebook executed in a real Jupyter kernel: plots display as PNG in a fresh kernel
(without importing pyplot first) and a glmer's rich views name its family and link."""

from __future__ import annotations

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

CELLS = [
    "import mixedmodels as mm\n"
    "gpa = mm.datasets.gpa(seed=1, n_students=30)\n"
    'm = mm.lmer("gpa ~ occasion + (1 + occasion | student)", gpa)',
    "m.plot.residuals()",
    "dating = mm.datasets.speed_dating(seed=1, n_raters=60, dates_per_rater=8)\n"
    'g = mm.glmer("decision ~ samerace + (1 | iid)", dating, family="binomial")\n'
    "g",
    "import sys\n"
    "from mixedmodels._progress import wants_progress\n"
    "print('progress by default:', wants_progress(None))",
]


@pytest.fixture(scope="module")
def executed():
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3")
    client.execute()
    return notebook


def _outputs(cell) -> dict:
    data: dict = {}
    for output in cell.outputs:
        assert output.output_type != "error", output
        data.update(output.get("data", {}))
        if output.output_type == "stream":
            data.setdefault("stream", "")
            data["stream"] += output.text
    return data


def test_plot_cell_shows_a_png(executed):
    data = _outputs(executed.cells[1])
    assert "image/png" in data
    assert len(data["image/png"]) > 1000  # base64 of a real picture, not an empty one


def test_glmer_html_names_family_and_link(executed):
    data = _outputs(executed.cells[2])
    html = data["text/html"]
    assert "Generalized linear mixed model" in html
    assert "binomial family" in html and "logit link" in html
    assert "Linear mixed model (ML)" not in html
    assert "<math" in html  # the equation, rendered without MathJax
    assert "\\operatorname{Binomial}" in data["text/latex"]


def test_progress_is_on_by_default_in_a_notebook(executed):
    assert "progress by default: True" in _outputs(executed.cells[3])["stream"]
