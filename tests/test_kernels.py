"""The compiled kernels against the numpy code they replace."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mixedmodels.frontend.design import ReTerm
from mixedmodels.glmm import blocks as glmm_blocks
from mixedmodels.lmm._kernels import HAVE_NUMBA


def _term(name: str, codes: np.ndarray, values: np.ndarray, levels: int) -> ReTerm:
    return ReTerm(
        group=name,
        codes=codes,
        levels=np.array([str(i) for i in range(levels)]),
        matrix=values[:, None],
        columns=("(Intercept)",),
        structure="us",
        expr="1",
        factors=(name,),
    )


def _term_rows(term: ReTerm, rows: slice) -> ReTerm:
    """The term on a subset of the rows (its levels all kept)."""
    return dataclasses.replace(term, codes=term.codes[rows], matrix=term.matrix[rows])


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")
def test_compiled_blocks_equal_the_sparse_maps():
    rng = np.random.default_rng(3)
    n = 500
    terms = (
        _term("a", rng.integers(0, 40, n), np.ones(n), 40),
        _term("b", rng.integers(0, 7, n), rng.normal(size=n), 7),
        _term("c", rng.integers(0, 5, n), np.ones(n), 5),
    )
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    blocks = glmm_blocks.WeightedCrossProducts(X, terms)
    assert blocks.kernel_inputs is not None
    z, w = rng.normal(size=n), rng.uniform(0.1, 1.0, n)
    compiled = blocks.evaluate(z, w)
    blocks.kernel_inputs, saved = None, blocks.kernel_inputs
    sparse = blocks.evaluate(z, w)
    blocks.kernel_inputs = saved
    for name in ("A11", "C1", "A22", "C2", "XyXy"):
        np.testing.assert_allclose(getattr(compiled, name), getattr(sparse, name), atol=1e-10)
    np.testing.assert_allclose(compiled.dense_A21, sparse.A21.toarray(), atol=1e-12)
    assert compiled.A21 is None  # the factorization must read the dense copy


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")
@pytest.mark.parametrize("formula", ["y ~ x + (1 | g)", "y ~ x + (1 + x | g)"])
def test_compiled_single_term_factor_equals_numpy(formula, monkeypatch):
    import pandas as pd

    import mixedmodels as mm
    from mixedmodels.lmm import deviance as lmm

    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(15), 8)
    x = rng.normal(size=g.size)
    y = 1 + x + rng.normal(size=15)[g] + 0.5 * rng.normal(size=15)[g] * x + rng.normal(size=g.size)
    cp = mm.lmer(formula, pd.DataFrame({"y": y, "x": x, "g": g})).crossprods
    kernel = lmm._SingleTermKernel(cp)
    assert kernel.compiled
    for theta in (cp.initial_theta(), cp.initial_theta() * 0.3 + 0.1):
        compiled = kernel.factor(theta)
        monkeypatch.setattr(kernel, "compiled", False)
        reference = kernel.factor(theta)
        monkeypatch.setattr(kernel, "compiled", True)
        assert compiled.logdet_z == pytest.approx(reference.logdet_z, rel=1e-12)
        np.testing.assert_allclose(compiled.L33, reference.L33, rtol=1e-10, atol=1e-12)
    if theta.size == 3:  # a singular block is refused like numpy's Cholesky refuses it
        with pytest.raises(np.linalg.LinAlgError):
            kernel.factor(np.array([1.0, 0.0, np.nan]))


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")
@pytest.mark.parametrize("formula", ["y ~ x + (1 | g)", "y ~ x + (1 + x | g)"])
@pytest.mark.parametrize("reml", [True, False])
def test_compiled_single_term_deviance_equals_numpy(formula, reml, monkeypatch):
    import pandas as pd

    import mixedmodels as mm
    from mixedmodels.lmm import deviance as lmm

    rng = np.random.default_rng(6)
    g = np.repeat(np.arange(12), 9)
    x = rng.normal(size=g.size)
    y = 1 + x + rng.normal(size=12)[g] + 0.4 * rng.normal(size=12)[g] * x + rng.normal(size=g.size)
    weights = rng.uniform(0.5, 2.0, g.size)
    data = pd.DataFrame({"y": y, "x": x, "g": g})
    cp = mm.lmer(formula, data, reml=reml, weights=weights).crossprods
    kernel = lmm._single_term_kernel(cp)
    for theta in (cp.initial_theta(), cp.initial_theta() * 0.3 + 0.1):
        compiled = lmm.deviance(cp, theta, reml)
        monkeypatch.setattr(kernel, "compiled", False)
        reference = lmm.deviance(cp, theta, reml)
        monkeypatch.setattr(kernel, "compiled", True)
        assert compiled == pytest.approx(reference, rel=1e-12)
    if cp.n_theta == 3:  # a non-positive-definite block is an infinite deviance
        assert lmm.deviance(cp, np.array([1.0, 0.0, np.nan]), reml) == np.inf


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")
@pytest.mark.parametrize(
    "formula",
    [
        "y ~ x + (1 + x + z | g)",
        "y ~ x + ar1(0 + f | g) + (1 | g)",
        "y ~ x + cs(0 + f | g)",
        "y ~ x + toep(0 + f | g)",
        "y ~ x + diag(1 + x + z | g)",
    ],
)
@pytest.mark.parametrize("reml", [True, False])
def test_compiled_block_term_deviance_equals_numpy(formula, reml):
    """One term of k >= 3 columns, or glmmTMB-style terms merged on one grouping factor:
    the compiled kernel against the numpy factorization, on random θ and weights."""
    import pandas as pd

    import mixedmodels as mm
    from mixedmodels.lmm import deviance as lmm
    from mixedmodels.lmm.crossprods import CrossProducts
    from mixedmodels.lmm.structured import merged_crossprods

    rng = np.random.default_rng(8)
    g = np.repeat(np.arange(30), 4)
    f = np.tile(["a", "b", "c", "d"], 30)
    x, z = rng.normal(size=(2, g.size))
    y = x + rng.normal(size=30)[g] + rng.normal(size=(30, 4))[g, np.tile(np.arange(4), 30)]
    data = pd.DataFrame({"y": y + rng.normal(size=g.size), "x": x, "z": z, "g": g, "f": f})
    weights = rng.uniform(0.5, 2.0, g.size)
    design = mm.lmer_design(formula, data, weights=weights)
    cp = CrossProducts.build(design.y, design.X, design.terms, design.weights, design.offset)
    cp = merged_crossprods(cp, design.y, design.X, design.weights, design.offset) or cp
    kernel = lmm._block_term_kernel(cp)
    assert kernel is not None and lmm._single_term_kernel(cp) is None
    compiled = kernel.profiled(reml)
    for _ in range(4):
        theta = cp.initial_theta() + rng.uniform(-0.5, 0.5, cp.n_theta)
        theta = np.maximum(theta, cp.lower_bounds())
        reference = lmm.objective(cp, lmm.factorize(cp, theta), reml)
        assert compiled(theta) == pytest.approx(reference, rel=1e-11)
    assert compiled(np.full(cp.n_theta, np.nan)) == np.inf


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")
@pytest.mark.parametrize("weighted", [False, True])
def test_compiled_lmer_blocks_of_scalar_terms_equal_the_numpy_sums(weighted, monkeypatch):
    """lmer's row pass for crossed scalar terms with a small tail (one compiled pass)
    against the bincount path it replaces, block for block, offset and weights included."""
    from mixedmodels.lmm import _kernels, crossprods

    rng = np.random.default_rng(9)
    n = 600
    ordered = [
        _term("a", rng.integers(0, 40, n), np.ones(n), 40),
        _term("b", rng.integers(0, 12, n), rng.normal(size=n), 12),
        _term("c", rng.integers(0, 5, n), np.ones(n), 5),
    ]
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    y, offset = rng.normal(size=n), rng.normal(size=n)
    weights = rng.uniform(0.2, 2.0, n) if weighted else None
    assert crossprods._compiled_scalar_blocks(ordered[0], ordered[1:])
    compiled = crossprods.BlockSums.of_rows(y, X, ordered, weights, offset)
    # partitions' sums add as the whole table's (mixedmodels.scale)
    halves = [
        crossprods.BlockSums.of_rows(
            y[part], X[part], [_term_rows(t, part) for t in ordered],
            None if weights is None else weights[part], offset[part],
        )
        for part in (slice(0, n // 2), slice(n // 2, n))
    ]  # fmt: skip
    added = halves[0] + halves[1]
    np.testing.assert_allclose(added.A21, compiled.A21, rtol=1e-12)
    np.testing.assert_allclose(added.A22, compiled.A22, rtol=1e-12)
    monkeypatch.setattr(_kernels, "HAVE_NUMBA", False)
    reference = crossprods.BlockSums.of_rows(y, X, ordered, weights, offset)
    for name in ("A11", "C1", "C2", "XyXy"):
        np.testing.assert_allclose(getattr(compiled, name), getattr(reference, name), rtol=1e-12)
    for name in ("A21", "A22"):  # the compiled pass's small blocks come dense
        got, expected = getattr(compiled, name), getattr(reference, name)
        assert isinstance(got, np.ndarray)
        np.testing.assert_allclose(got, expected.toarray(), rtol=1e-12)
    # the cross-products of the two: the same CSR A₂₁ (sorted), dense tail and paths
    order = np.arange(3)
    got = crossprods.CrossProducts.from_sums(compiled, ordered, order)
    expected = crossprods.CrossProducts.from_sums(reference, ordered, order)
    assert got.A21.nnz == expected.A21.nnz and got.A21.has_sorted_indices
    np.testing.assert_allclose(got.A21.toarray(), expected.A21.toarray(), rtol=1e-12)
    np.testing.assert_allclose(got.A22, expected.A22, rtol=1e-12)
    assert (got.pair_map is None) == (expected.pair_map is None)
    assert (got.dense_A21 is None) == (expected.dense_A21 is None)


def test_a_one_term_fit_with_many_levels_does_not_load_numba():
    """Above COMPILED_LEVELS levels the numpy twin runs (an evaluation is memory-bound
    there): the fit neither imports numba nor pays its memory, and equals the compiled fit
    of the same data below the limit's reach (checked above, level for level)."""
    import subprocess
    import sys

    from mixedmodels.lmm._kernels import COMPILED_LEVELS

    code = (
        "import sys, numpy as np, pandas as pd, mixedmodels as mm\n"
        "rng = np.random.default_rng(3)\n"
        f"g = np.repeat(np.arange({COMPILED_LEVELS + 1}), 4)\n"
        "x = rng.normal(size=g.size)\n"
        "y = x + rng.normal(size=g.max() + 1)[g] + rng.normal(size=g.size)\n"
        "fit = mm.lmer('y ~ x + (1 + x | g)', pd.DataFrame({'y': y, 'x': x, 'g': g}))\n"
        "print(fit.ngroups['g'], 'numba' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == [str(COMPILED_LEVELS + 1), "False"]


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")
def test_compiled_leverages_equal_numpy_and_the_dense_definition(monkeypatch):
    from mixedmodels.glmm import gradient as glmm_gradient
    from mixedmodels.lmm.deviance import factorize

    rng = np.random.default_rng(8)
    n = 400
    terms = (
        _term("a", rng.integers(0, 30, n), np.ones(n), 30),
        _term("b", rng.integers(0, 6, n), rng.normal(size=n), 6),
        _term("c", rng.integers(0, 4, n), np.ones(n), 4),
    )
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    blocks = glmm_blocks.WeightedCrossProducts(X, terms)
    w = rng.uniform(0.1, 0.3, n)
    cp = blocks.evaluate(rng.normal(size=n), w)
    fac = factorize(cp, np.array([0.7, 1.3, 0.4]))
    compiled = glmm_gradient._leverages(cp, fac)
    monkeypatch.setattr(glmm_gradient, "HAVE_NUMBA", False)
    reference = glmm_gradient._leverages(cp, fac)
    np.testing.assert_allclose(compiled, reference, rtol=1e-12, atol=1e-14)
    # h = diag(ZΛ P⁻¹ ΛZᵀ), P = ΛZᵀWZΛ + I, with Z and Λ written out
    columns = []
    for term, T in zip(cp.terms, fac.factors, strict=True):
        Z = np.zeros((n, term.n_levels))
        Z[np.arange(n), term.codes] = term.matrix[:, 0] * T[0, 0]
        columns.append(Z)
    ZL = np.hstack(columns)
    P = ZL.T @ (w[:, None] * ZL) + np.eye(ZL.shape[1])
    dense = np.einsum("ij,ji->i", ZL, np.linalg.solve(P, ZL.T))
    np.testing.assert_allclose(compiled, dense, rtol=1e-10, atol=1e-13)


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")
def test_compiled_logit_inverse_equals_numpy():
    from mixedmodels.glmm import families

    eta = np.concatenate([np.linspace(-60.0, 60.0, 997), [0.0, -40.0, 40.0]])
    eps = np.finfo(float).eps
    reference = np.clip(1.0 / (1.0 + np.exp(-np.clip(eta, -40.0, 40.0))), eps, 1 - eps)
    compiled = families._logit_inverse(eta)
    np.testing.assert_allclose(compiled, reference, rtol=1e-15, atol=0)
    assert compiled.min() > 0 and compiled.max() < 1


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")
@pytest.mark.parametrize(
    "formula", ["y ~ x + (1 | a) + (1 | b)", "y ~ x + (1 | a) + (1 | b) + (1 | c)"]
)
@pytest.mark.parametrize("reml", [True, False])
def test_compiled_scalar_terms_deviance_equals_numpy(formula, reml):
    """The compiled elimination of crossed scalar terms against factorize's numpy and
    LAPACK calls, with weights, at the start, inside and on a bound."""
    import pandas as pd

    import mixedmodels as mm
    from mixedmodels.lmm import crossed_kernel
    from mixedmodels.lmm.deviance import deviance, factorize, objective

    rng = np.random.default_rng(8)
    n = 300
    a, b, c = rng.integers(0, 30, n), rng.integers(0, 9, n), rng.integers(0, 4, n)
    x = rng.normal(size=n)
    y = x + rng.normal(size=30)[a] + rng.normal(size=9)[b] + rng.normal(size=4)[c]
    y = y + rng.normal(size=n)
    data = pd.DataFrame({"y": y, "x": x, "a": a, "b": b, "c": c})
    weights = rng.uniform(0.5, 2.0, n)
    cp = mm.lmer(formula, data, reml=reml, weights=weights).crossprods
    kernel = crossed_kernel.scalar_terms_kernel(cp)
    assert kernel is not None
    compiled = kernel.profiled(reml)
    for theta in (
        cp.initial_theta(),
        np.linspace(0.2, 1.7, cp.n_theta),
        np.r_[0.0, 0.8, 0.0][: cp.n_theta],
    ):
        reference = objective(cp, factorize(cp, theta), reml)
        assert compiled(theta) == pytest.approx(reference, rel=1e-12)
        assert deviance(cp, theta, reml) == compiled(theta)  # deviance() takes the kernel
    assert compiled(np.r_[1.0, np.nan, 1.0][: cp.n_theta]) == np.inf


def test_scalar_terms_kernel_only_where_it_pays():
    """A vector term, or a tail beyond COMPILED_TAIL effects, keeps the numpy path."""
    import pandas as pd

    import mixedmodels as mm
    from mixedmodels.lmm import crossed_kernel

    rng = np.random.default_rng(9)
    n = 2000
    data = pd.DataFrame(
        {"y": rng.normal(size=n), "x": rng.normal(size=n), "a": rng.integers(0, 300, n),
         "b": rng.integers(0, crossed_kernel.COMPILED_TAIL + 1, n)}
    )  # fmt: skip
    wide = mm.lmer("y ~ x + (1 | a) + (1 | b)", data).crossprods
    assert wide.q2 == crossed_kernel.COMPILED_TAIL + 1
    assert crossed_kernel.scalar_terms_kernel(wide) is None
    data["b"] = data["b"] % 10
    slope = mm.lmer("y ~ x + (1 | a) + (x | b)", data).crossprods
    assert crossed_kernel.scalar_terms_kernel(slope) is None


@pytest.mark.parametrize("columns", [(1, 1), (2, 1), (1, 2), (2, 2, 1)])
@pytest.mark.parametrize("weighted", [False, True])
def test_small_tail_blocks_equal_the_sparse_products(columns, weighted, monkeypatch):
    """The bincount sums of a small tail are the sparse products' sums, bit for bit."""
    from mixedmodels.lmm import _kernels, crossprods

    monkeypatch.setattr(_kernels, "HAVE_NUMBA", False)  # not the compiled pass of scalars

    rng = np.random.default_rng(10)
    n = 400
    terms = []
    for index, (levels, k) in enumerate(zip((40, 12, 7), columns, strict=False)):
        matrix = np.column_stack([np.ones(n)] + [rng.normal(size=n) for _ in range(k - 1)])
        terms.append(
            ReTerm(f"g{index}", rng.integers(0, levels, n), np.arange(levels).astype(str),
                   matrix, tuple(f"c{i}" for i in range(k)), "us", "1", (f"g{index}",))
        )  # fmt: skip
    X, y = np.column_stack([np.ones(n), rng.normal(size=n)]), rng.normal(size=n)
    weights = rng.uniform(0.5, 2.0, n) if weighted else None
    assert crossprods._small_tail(terms[0], terms[1:], X.shape[1] + 1)
    small = crossprods.BlockSums.of_rows(y, X, terms, weights)
    monkeypatch.setattr(crossprods, "_BINCOUNT_MAX_BLOCK", 0)
    sparse = crossprods.BlockSums.of_rows(y, X, terms, weights)
    for name in ("A21", "A22"):
        assert np.array_equal(getattr(small, name).toarray(), getattr(sparse, name).toarray())
        assert getattr(small, name).has_sorted_indices
    assert np.array_equal(small.C2, sparse.C2)


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")
@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("weighted", [False, True])
def test_compiled_first_term_blocks_equal_the_bincount_sums_bit_for_bit(k, weighted):
    from mixedmodels.lmm import crossprods

    rng = np.random.default_rng(11)
    n, levels = 500, 37
    matrix = np.column_stack([np.ones(n)] + [rng.normal(size=n) for _ in range(k - 1)])
    term = ReTerm("g", rng.integers(0, levels, n), np.arange(levels).astype(str), matrix,
                  tuple(f"c{i}" for i in range(k)), "us", "1", ("g",))  # fmt: skip
    weights = rng.uniform(0.5, 2.0, n) if weighted else None
    sqrt_w = None if weights is None else np.sqrt(weights)
    Xy = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    if sqrt_w is not None:
        Xy = Xy * sqrt_w[:, None]
    A11, C1 = crossprods._compiled_first_term_blocks(term, weights, sqrt_w, Xy)
    assert np.array_equal(A11, crossprods._block_diagonal_crossprod(term, weights))
    assert np.array_equal(C1, crossprods._level_crossprod(term, sqrt_w, Xy))


@pytest.mark.parametrize("k", [1, 2])
def test_one_term_blocks_without_stacking_x_and_y_equal_the_stacked_sums(k, monkeypatch):
    """The numpy path of an unweighted one-term model sums X's and y's own columns (no
    [X y] copy): C₁ bit for bit the stacked bincounts', [X y]ᵀ[X y] to rounding."""
    from mixedmodels.lmm import _kernels, crossprods

    monkeypatch.setattr(_kernels, "HAVE_NUMBA", False)  # the path of > COMPILED_LEVELS
    rng = np.random.default_rng(12)
    n, levels = 400, 30
    matrix = np.column_stack([np.ones(n)] + [rng.normal(size=n) for _ in range(k - 1)])
    term = ReTerm("g", rng.integers(0, levels, n), np.arange(levels).astype(str), matrix,
                  tuple(f"c{i}" for i in range(k)), "us", "1", ("g",))  # fmt: skip
    X, y = np.column_stack([np.ones(n), rng.normal(size=n)]), rng.normal(size=n)
    sums = crossprods.BlockSums.of_rows(y, X, [term])
    Xy = np.column_stack([X, y])
    assert np.array_equal(sums.C1, crossprods._level_crossprod(term, None, Xy))
    assert np.array_equal(sums.A11, crossprods._block_diagonal_crossprod(term, None))
    np.testing.assert_allclose(sums.XyXy, Xy.T @ Xy, rtol=1e-14)
    assert sums.A21.shape == (0, levels * k) and sums.C2.shape == (0, 3)
