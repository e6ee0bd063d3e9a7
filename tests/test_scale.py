"""Fits on Dask data (mixedmodels.scale) equal the in-memory fits: a LocalCluster of two
workers, on parquet written by the test (1M rows)."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.errors import DataError, MixedModelsError

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pytest.importorskip("pyarrow")

N_ROWS = 1_000_000


@pytest.fixture(scope="session")
def cluster_client():
    """One LocalCluster of 2 single-threaded workers for the session, the default client."""
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, dashboard_address=None, processes=True
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="session")
def big_data(tmp_path_factory):
    """1M rows with a string grouping factor, a crossed numeric one and a 3-level factor,
    written as 8 parquet partitions; returns (pandas frame, parquet folder)."""
    rng = np.random.default_rng(14)
    n = N_ROWS
    g = rng.integers(0, 3000, n)
    a = rng.integers(0, 150, n)
    x = rng.normal(size=n)
    f = np.array(["low", "mid", "high"])[rng.integers(0, 3, n)]
    b0, b1, c0 = rng.normal(0, 0.8, 3000), rng.normal(0, 0.3, 3000), rng.normal(0, 0.5, 150)
    eta = 0.2 + 0.5 * x + b0[g] + b1[g] * x + c0[a] + 0.3 * (f == "high")
    frame = pd.DataFrame(
        {
            "y": eta + rng.normal(size=n),
            "yb": (rng.random(n) < 1 / (1 + np.exp(-(eta - 0.2) * 0.6))).astype(float),
            "yc": rng.poisson(np.exp(0.3 * (eta - 0.2))).astype(float),
            "x": x,
            "f": f,
            "g": np.char.add("g", g.astype(str)),
            "a": a,
        }
    )
    frame.loc[[7, 500_000], "x"] = np.nan  # NA rows are dropped in both paths
    path = tmp_path_factory.mktemp("scale") / "rows"
    path.mkdir()
    for index, start in enumerate(range(0, n, n // 8)):
        frame.iloc[start : start + n // 8].to_parquet(path / f"part.{index}.parquet")
    return frame, str(path / "*.parquet")


def _fit_both(fit, formula, frame, path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        in_memory = fit(formula, frame, **kwargs)
        on_dask = fit(formula, path, **kwargs)
    return in_memory, on_dask


def _assert_same(in_memory, on_dask):
    np.testing.assert_allclose(on_dask.theta, in_memory.theta, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        on_dask.fixef.to_numpy(), in_memory.fixef.to_numpy(), rtol=1e-6, atol=1e-7
    )
    assert on_dask.loglik == pytest.approx(in_memory.loglik, rel=1e-8)
    assert on_dask.nobs == in_memory.nobs
    assert list(on_dask.fixef.index) == list(in_memory.fixef.index)


@pytest.mark.slow
@pytest.mark.parametrize(
    "formula",
    ["y ~ x + (1 | g)", "y ~ x + f + (1 + x | g)", "y ~ x + (1 | g) + (1 | a)"],
    ids=["scalar", "vector", "crossed"],
)
def test_lmer_on_parquet_equals_in_memory(cluster_client, big_data, formula):
    frame, path = big_data
    in_memory, on_dask = _fit_both(mm.lmer, formula, frame, path)
    _assert_same(in_memory, on_dask)
    assert on_dask.sigma == pytest.approx(in_memory.sigma, rel=1e-7)
    assert [line.split(":")[0] for line in on_dask.fit_log[:2]] == ["levels", "blocks"]
    for label, table in in_memory.ranef().items():
        np.testing.assert_allclose(on_dask.ranef()[label].to_numpy(), table.to_numpy(), atol=1e-6)
        assert list(on_dask.ranef()[label].index) == list(table.index)


@pytest.mark.slow
def test_predict_fitted_residuals_are_lazy_and_equal(cluster_client, big_data):
    frame, path = big_data
    in_memory, on_dask = _fit_both(mm.lmer, "y ~ x + f + (1 + x | g)", frame, path)
    # the estimates agree to ~1e-7 (summation order differs between partitions), so the
    # predictions agree to that times the covariates
    fitted = on_dask.fitted()
    assert isinstance(fitted, dd.Series)
    np.testing.assert_allclose(fitted.compute().to_numpy(), in_memory.fitted(), atol=1e-6)
    np.testing.assert_allclose(
        on_dask.residuals().compute().to_numpy(), in_memory.residuals(), atol=1e-6
    )
    new = frame.iloc[:5000].dropna()
    lazy = on_dask.predict(dd.from_pandas(new, npartitions=3), re_form="~0")
    assert isinstance(lazy, dd.Series)
    np.testing.assert_allclose(
        lazy.compute().to_numpy(), in_memory.predict(new, re_form="~0"), atol=1e-6
    )
    np.testing.assert_allclose(on_dask.predict(new), in_memory.predict(new), atol=1e-6)
    assert "Scaled residuals" in on_dask.summary()


def test_dask_dataframe_input_and_missing_rows(cluster_client):
    rng = np.random.default_rng(3)
    n = 4000
    g = rng.integers(0, 40, n)
    frame = pd.DataFrame({"y": rng.normal(size=n) + rng.normal(size=40)[g], "g": g, "w": 1.0})
    frame.loc[3, "y"] = np.nan
    with pytest.warns(mm.MissingDataWarning, match="Dropped 1 row"):
        on_dask = mm.lmer("y ~ 1 + (1 | g)", dd.from_pandas(frame, npartitions=3), weights="w")
    with pytest.warns(mm.MissingDataWarning):
        in_memory = mm.lmer("y ~ 1 + (1 | g)", frame, weights="w")
    _assert_same(in_memory, on_dask)
    with pytest.raises(DataError, match="na_action='fail'"):
        mm.lmer("y ~ 1 + (1 | g)", dd.from_pandas(frame, npartitions=2), na_action="fail")


@pytest.mark.parametrize(
    "formula, offset",
    [
        ("y ~ x + offset(log(z)) + (1 | g)", None),
        ("y ~ x + (1 | g)", "z"),
        ("y ~ x + offset(log(z)) + (1 | g)", "x"),
    ],
    ids=["formula", "argument", "both"],
)
def test_offset_on_dask_equals_in_memory(cluster_client, formula, offset):
    """The formula's offset() terms and offset= both enter the Dask fit (and its
    fitted values and predictions) as in memory; NA in an offset variable drops the row."""
    rng = np.random.default_rng(5)
    n = 6000
    g = rng.integers(0, 60, n)
    x = rng.normal(size=n)
    z = rng.uniform(0.5, 3.0, n)
    frame = pd.DataFrame(
        {"y": x + np.log(z) + rng.normal(size=60)[g] + rng.normal(size=n), "x": x, "z": z}
    )
    frame["g"] = g
    frame.loc[11, "z"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        in_memory = mm.lmer(formula, frame, offset=offset)
        on_dask = mm.lmer(formula, dd.from_pandas(frame, npartitions=3), offset=offset)
    _assert_same(in_memory, on_dask)
    np.testing.assert_allclose(on_dask.fitted().compute().to_numpy(), in_memory.fitted(), atol=1e-7)
    new = frame.iloc[:50].dropna()
    np.testing.assert_allclose(on_dask.predict(new), in_memory.predict(new), atol=1e-7)
    lazy = on_dask.predict(dd.from_pandas(new, npartitions=2)).compute().to_numpy()
    np.testing.assert_allclose(lazy, in_memory.predict(new), atol=1e-7)


def test_refusals_name_the_fix(cluster_client, tmp_path):
    frame = pd.DataFrame({"y": np.arange(20.0), "x": np.arange(20.0), "g": np.arange(20) % 4})
    data = dd.from_pandas(frame, npartitions=2)
    with pytest.raises(DataError, match="stateful transform center"):
        mm.lmer("y ~ center(x) + (1 | g)", data)
    with pytest.raises(DataError, match="must be a column name"):
        mm.lmer("y ~ x + (1 | g)", data, weights=np.ones(20))
    with pytest.raises(DataError, match="Unknown column 'z'"):
        mm.lmer("y ~ z + (1 | g)", data)
    with pytest.raises(DataError, match="No parquet file"):
        mm.lmer("y ~ x + (1 | g)", str(tmp_path / "nothing-*.parquet"))


def test_blocks_that_do_not_fit_are_refused_with_the_figure():
    from mixedmodels.frontend.design import ReTerm
    from mixedmodels.scale.memory import block_bytes, check_fits

    def term(levels: int) -> ReTerm:
        return ReTerm(
            "g",
            np.zeros(0, int),
            np.arange(levels).astype(str),
            np.zeros((0, 1)),
            ("(Intercept)",),
            "us",
            "1",
            ("g",),
        )

    ordered = [term(1_000_000), term(10_000)]
    # 1M x 10k sparse cross block at most, 10k² dense tail
    assert block_bytes(ordered, 2) == 8 * (10**6 * 4 + 10**8 + 3 * 10**4 + 9) + 12 * 10**10
    expected = 3 * block_bytes(ordered, 2) / 1e9
    with pytest.raises(DataError, match=rf"need about {expected:.2f} GB .* a worker has 4\.00"):
        check_fits(ordered, 2, client_bytes=1e12, worker_bytes=4e9)


def test_import_without_the_dask_extra():
    """Without dask, distributed and pyarrow mixedmodels imports and fits in memory; a
    parquet path is refused naming the extra."""
    code = (
        "import sys\n"
        "for name in ('dask', 'distributed', 'pyarrow'): sys.modules[name] = None\n"
        "import mixedmodels as mm\n"
        "m = mm.lmer('gpa ~ occasion + (1 | student)', mm.datasets.gpa(seed=1))\n"
        "try:\n"
        "    mm.lmer('y ~ (1 | g)', 'rows.parquet')\n"
        "except mm.MixedModelsError as exc:\n"
        "    print('refused:', exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "refused:" in result.stdout and "mixedmodels[dask]" in result.stdout
    assert issubclass(DataError, MixedModelsError)


@pytest.mark.slow
@pytest.mark.parametrize(
    "formula, family", [("yb ~ x + (1 | g)", "binomial"), ("yc ~ x + (1 | g)", "poisson")]
)
def test_glmer_on_parquet_equals_in_memory(cluster_client, big_data, formula, family):
    frame, path = big_data
    in_memory, on_dask = _fit_both(mm.glmer, formula, frame, path, family=family)
    _assert_same(in_memory, on_dask)
    assert isinstance(on_dask, mm.GeneralizedLinearMixedModel)
    np.testing.assert_allclose(on_dask.vcov.to_numpy(), in_memory.vcov.to_numpy(), rtol=1e-4)
    table = in_memory.ranef()["g"]
    np.testing.assert_allclose(on_dask.ranef()["g"].to_numpy(), table.to_numpy(), atol=1e-6)
    assert list(on_dask.ranef()["g"].index) == list(table.index)
    assert [line.split(":")[0] for line in on_dask.fit_log[:3]] == ["levels", "blocks", "encode"]
    fitted = on_dask.fitted()
    assert isinstance(fitted, dd.Series)
    np.testing.assert_allclose(fitted.compute().to_numpy(), in_memory.fitted(), atol=1e-6)


def test_glmer_on_dask_data_with_offset_and_weights(cluster_client):
    rng = np.random.default_rng(8)
    n = 5000
    g = rng.integers(0, 50, n)
    x = rng.normal(size=n)
    exposure = rng.uniform(0.5, 2.0, n)
    eta = 0.2 + 0.4 * x + rng.normal(0, 0.5, 50)[g]
    frame = pd.DataFrame(
        {
            "y": rng.poisson(np.exp(eta) * exposure).astype(float),
            "x": x,
            "g": g,
            "exposure": exposure,
            "w": rng.integers(1, 3, n).astype(float),
        }
    )
    frame.loc[4, "exposure"] = np.nan
    formula = "y ~ x + offset(log(exposure)) + (1 | g)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        in_memory = mm.glmer(formula, frame, family="poisson", weights="w")
        on_dask = mm.glmer(
            formula, dd.from_pandas(frame, npartitions=3), family="poisson", weights="w"
        )
    _assert_same(in_memory, on_dask)
    new = frame.iloc[:40].dropna()
    np.testing.assert_allclose(
        on_dask.predict(new, type="response"), in_memory.predict(new, type="response"), atol=1e-7
    )
    for kind in ("deviance", "pearson", "response", "working"):
        lazy = on_dask.residuals(kind)
        assert isinstance(lazy, dd.Series)
        np.testing.assert_allclose(lazy.compute().to_numpy(), in_memory.residuals(kind), atol=1e-6)
    np.testing.assert_allclose(on_dask.fitted().compute().to_numpy(), in_memory.fitted(), atol=1e-6)


def test_glmer_on_dask_data_refuses_what_it_does_not_fit(cluster_client):
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(
        {
            "y": rng.integers(0, 2, 200).astype(float),
            "x": rng.normal(size=200),
            "g": np.arange(200) % 10,
            "h": np.arange(200) % 7,
        }
    )
    data = dd.from_pandas(frame, npartitions=2)
    with pytest.raises(MixedModelsError, match="one scalar random-effects term"):
        mm.glmer("y ~ x + (1 | g) + (1 | h)", data, family="binomial")
    with pytest.raises(MixedModelsError, match="scalar term such as"):
        mm.glmer("y ~ x + (1 + x | g)", data, family="binomial")
    with pytest.raises(MixedModelsError, match="canonical links"):
        mm.glmer("y ~ x + (1 | g)", data, family="binomial", link="probit")
    with pytest.raises(MixedModelsError, match="nagq=1"):
        mm.glmer("y ~ x + (1 | g)", data, family="binomial", nagq=5)
    frame["yes"] = np.where(frame["y"] > 0, "yes", "no")
    with pytest.raises(MixedModelsError, match="needs a numeric response"):
        mm.glmer("yes ~ x + (1 | g)", dd.from_pandas(frame, npartitions=2), family="binomial")


def test_glmer_on_dask_data_checks_separation_as_in_memory(cluster_client):
    """A 0/1 column that separates the outcomes, or a constant response, is refused before
    any Laplace pass with the in-memory message; separation by a continuous covariate
    warns after the fit, naming it, as in memory."""
    rng = np.random.default_rng(3)
    n = 400
    frame = pd.DataFrame({"x": rng.normal(size=n), "g": np.arange(n) % 20})
    frame["t"] = (np.arange(n) % 5 == 0).astype(float)
    frame["y"] = np.where(frame["t"] == 1, 1.0, rng.integers(0, 2, n).astype(float))
    frame["zero"] = 0.0
    frame["split"] = (frame["x"] > 0).astype(float)
    data = dd.from_pandas(frame, npartitions=3)
    for formula, message in [
        ("y ~ x + t + (1 | g)", r"separated: t \(all 80 rows with it are 1\)"),
        ("zero ~ x + (1 | g)", "Every response is 0"),
    ]:
        for source in (frame, data):
            with pytest.raises(DataError, match=message):
                mm.glmer(formula, source, family="binomial")
    for source in (frame, data):
        with pytest.warns(mm.errors.ConvergenceWarning, match="separated by x"):
            mm.glmer("split ~ x + (1 | g)", source, family="binomial")


def test_fit_without_a_client_starts_and_closes_its_own_cluster(tmp_path):
    """No Client: the fit starts a LocalCluster for itself (the passes must not look for a
    default client) and closes it after."""
    rng = np.random.default_rng(4)
    g = rng.integers(0, 20, 2000)
    frame = pd.DataFrame({"y": rng.normal(size=2000) + rng.normal(size=20)[g], "g": g})
    frame["yb"] = (frame["y"] > 0).astype(float)
    frame.to_parquet(tmp_path / "rows.parquet")
    code = (
        "import mixedmodels as mm\n"
        f"path = {str(tmp_path / 'rows.parquet')!r}\n"
        "m = mm.lmer('y ~ 1 + (1 | g)', path)\n"
        "b = mm.glmer('yb ~ 1 + (1 | g)', path, family='binomial')\n"
        "from distributed import default_client\n"
        "try:\n"
        "    default_client()\n"
        "except ValueError:\n"
        "    print('closed', m.nobs, b.nobs)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "closed 2000 2000" in result.stdout


@pytest.mark.parametrize(
    "values",
    [
        np.arange(-5, 45),  # integers over a dense range: the code table
        np.arange(50) * 1000,  # integers spread out: binary search
        np.linspace(-2.5, 3.0, 50),  # floats
    ],
    ids=["dense-ints", "sparse-ints", "floats"],
)
def test_numeric_grouping_codes_equal_the_in_memory_codes(values):
    """The encoder's fast coding of a numeric grouping column gives the in-memory fit's
    level order and codes, partition by partition."""
    from mixedmodels.frontend.formula import parse_formula
    from mixedmodels.frontend.lmer_design import lmer_design
    from mixedmodels.scale.encoding import ColumnPlan, PartitionEncoder, survey_partition

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"g": rng.permutation(np.repeat(values, 4)), "x": rng.normal(size=200)})
    frame["y"] = frame["x"] + rng.normal(size=200)
    formula = "y ~ x + (x | g)"
    plan = ColumnPlan.of(parse_formula(formula), None, None, list(frame.columns))
    parts = [frame.iloc[:80], frame.iloc[80:]]
    survey = survey_partition(parts[0], plan) + survey_partition(parts[1], plan)
    encoder = PartitionEncoder.from_survey(plan, survey, "omit")
    [term] = lmer_design(formula, frame).terms
    assert list(encoder.design.terms[0].levels) == list(term.levels)
    codes = np.concatenate([encoder.rows(part).terms[0].codes for part in parts])
    np.testing.assert_array_equal(codes, term.codes)


def test_response_sums_of_many_responses_equal_one_at_a_time():
    """The y parts of the blocks for m responses at once (the Dask bootstrap's pass) equal
    ``CrossProducts.with_response`` one response at a time: crossed and vector terms,
    weights and an offset."""
    from mixedmodels.frontend.lmer_design import lmer_design
    from mixedmodels.lmm.crossprods import CrossProducts, ResponseSums

    rng = np.random.default_rng(5)
    n = 400
    frame = pd.DataFrame(
        {"x": rng.normal(size=n), "g": rng.integers(0, 30, n), "h": rng.integers(0, 6, n)}
    )
    frame["y"] = frame["x"] + rng.normal(size=n)
    weights, offset = rng.uniform(0.5, 2.0, n), rng.normal(size=n)
    design = lmer_design("y ~ x + (x | g) + (1 | h)", frame)
    cp = CrossProducts.build(design.y, design.X, design.terms, weights, offset)
    Y = rng.normal(size=(n, 3))
    sums = ResponseSums.of_rows(Y[:200], design.X[:200], _rows(cp.terms, 0, 200), weights[:200],
                                offset[:200])  # fmt: skip
    sums = sums + ResponseSums.of_rows(
        Y[200:], design.X[200:], _rows(cp.terms, 200, n), weights[200:], offset[200:]
    )
    for r in range(3):
        one = cp.with_response(Y[:, r], design.X, weights, offset)
        many = cp.with_response_sums(sums, r)
        for name in ("C1", "C2", "XyXy"):
            np.testing.assert_allclose(getattr(many, name), getattr(one, name), rtol=1e-12)
    assert not np.allclose(cp.with_response_sums(sums, 0).C1, cp.C1)  # y really replaced


def _rows(terms, start, stop):
    import dataclasses

    return [
        dataclasses.replace(t, codes=t.codes[start:stop], matrix=t.matrix[start:stop])
        for t in terms
    ]


def test_bootstrap_on_dask_refits_each_drawn_response_exactly(cluster_client):
    """Each replicate of a Dask fit's bootstrap is the in-memory refit of the response its
    partitions drew (gathered here), with weights; a seed gives the same replicates."""
    from mixedmodels.inference.bootstrap import REFIT_CONTROL
    from mixedmodels.scale.bootstrap import DaskSimulator, partition_responses

    rng = np.random.default_rng(8)
    n = 3000
    frame = pd.DataFrame(
        {"x": rng.normal(size=n), "g": rng.integers(0, 40, n), "w": rng.uniform(0.5, 2, n)}
    )
    frame["h"] = rng.integers(0, 7, n).astype(str)
    frame["y"] = frame["x"] + rng.normal(size=40)[frame["g"]] + rng.normal(size=n)
    data = dd.from_pandas(frame, npartitions=3)
    formula = "y ~ x + (x | g) + (1 | h)"
    model = mm.lmer(formula, data, weights="w")
    reference = mm.lmer(formula, frame, weights=frame["w"].to_numpy())
    seeds = np.random.SeedSequence(4).spawn(3)
    simulator = DaskSimulator(model, None, seeds)
    [draws] = simulator.draws
    parts = [part.compute() for part in data.to_delayed()]
    y = np.concatenate(
        [partition_responses((i, part), model.encoder, draws)[2] for i, part in enumerate(parts)]
    )
    for r, seed in enumerate(seeds):
        stats, _ = simulator.replicate(seed)
        objective = reference.objective.with_response(y[:, r])
        opt = objective.fit(control=REFIT_CONTROL)
        expected = simulator.statistics(objective, opt.final)
        np.testing.assert_allclose(stats, expected, rtol=1e-5, atol=1e-7)
    result = model.bootstrap(3, seed=4, progress=False)
    again = model.bootstrap(3, seed=4, progress=False)
    assert result.n_failed == 0
    # equal up to the order in which the tree adds the partitions' sums (rounding)
    np.testing.assert_allclose(result.replicates, again.replicates, rtol=1e-6, atol=1e-6)
    with pytest.raises(mm.UnsupportedToolError, match="bootstrap"):
        model.simulate()
    with pytest.raises(mm.UnsupportedToolError, match="sample"):
        model.plot.residuals()
