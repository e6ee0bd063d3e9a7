"""lmer on parquet through Dask against pandas + the in-memory fit, with peak memory of the
client and of every worker (resident set size, sampled).

The parquet is written once into ``benchmarks/.cache/dask`` (not committed).  Cases:
``--rows 10000000`` compares the Dask path with ``pandas.read_parquet`` + ``lmer``;
``--big`` runs 100M rows ``y ~ x + (x | g)`` (1M groups) and ``y ~ x + (1 | a) + (1 | b)``
(100,000 x 100 levels); ``--glmer`` runs glmer binomial ``yb ~ x + (1 | g)`` with 100,000
groups on 20M rows (``--rows`` to run it smaller).  Run
``python benchmarks/bench_dask.py --rows 10000000``.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

CACHE = Path(__file__).resolve().parent / ".cache" / "dask"
ROWS_PER_FILE = 2_000_000


def write_parquet(
    name: str, n: int, n_g: int, n_a: int, n_b: int, seed: int = 1, binary: bool = False
) -> Path:
    folder = CACHE / f"{name}-{n}"
    if folder.exists() and any(folder.glob("*.parquet")):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    b0, b1 = rng.normal(0, 0.8, n_g), rng.normal(0, 0.3, n_g)
    ca, cb = rng.normal(0, 0.5, n_a), rng.normal(0, 0.5, n_b)
    for index, start in enumerate(range(0, n, ROWS_PER_FILE)):
        m = min(ROWS_PER_FILE, n - start)
        g, a, b = rng.integers(0, n_g, m), rng.integers(0, n_a, m), rng.integers(0, n_b, m)
        x = rng.normal(size=m)
        y = 0.2 + 0.5 * x + b0[g] + b1[g] * x + ca[a] + cb[b] + rng.normal(size=m)
        columns = {"y": y, "x": x, "g": g, "a": a, "b": b}
        if binary:  # a logistic GLMM with a random intercept per g
            eta = -0.3 + 0.5 * x + b0[g]
            columns["yb"] = (rng.random(m) < 1.0 / (1.0 + np.exp(-eta))).astype(float)
        pd.DataFrame(columns).to_parquet(folder / f"part.{index:04d}.parquet")
    return folder


class PeakMemory:
    """Peak RSS of this process and of the cluster's workers, sampled every 0.2 s."""

    def __init__(self, client=None):
        import psutil

        self.client, self.process = client, psutil.Process()
        self.client_peak, self.worker_peak = 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import psutil

        while not self._stop.is_set():
            self.client_peak = max(self.client_peak, self.process.memory_info().rss)
            if self.client is not None:
                rss = self.client.run(lambda: psutil.Process().memory_info().rss)
                self.worker_peak = max(self.worker_peak, *rss.values())
            time.sleep(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *args):
        self._stop.set()
        self._thread.join()


def run(formula: str, folder: Path, compare_pandas: bool, family: str | None = None) -> None:
    from distributed import Client, LocalCluster

    import mixedmodels as mm

    def fit(data):
        if family is None:
            return mm.lmer(formula, data)
        return mm.glmer(formula, data, family=family)

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None)
    client = Client(cluster)
    with PeakMemory(client) as peak:
        start = time.perf_counter()
        model = fit(str(folder / "*.parquet"))
        dask_seconds = time.perf_counter() - start
    print(
        f"{formula}: dask {dask_seconds:.1f} s, client peak {peak.client_peak / 1e9:.2f} GB, "
        f"worker peak {peak.worker_peak / 1e9:.2f} GB, logLik {model.loglik:.6f}"
    )
    print("  " + "\n  ".join(model.fit_log))
    client.close()
    cluster.close()
    if compare_pandas:
        with PeakMemory() as peak:
            start = time.perf_counter()
            frame = pd.read_parquet(folder)
            reference = fit(frame)
            pandas_seconds = time.perf_counter() - start
        print(
            f"  pandas + in memory {pandas_seconds:.1f} s (peak {peak.client_peak / 1e9:.2f} "
            f"GB), ratio {dask_seconds / pandas_seconds:.2f}, logLik {reference.loglik:.6f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=None, help="10M (lmer) or 20M (--glmer)")
    parser.add_argument("--big", action="store_true")
    parser.add_argument("--glmer", action="store_true", help="glmer binomial, 100,000 groups")
    parser.add_argument("--compare", action="store_true", help="--glmer: pandas + in memory too")
    args = parser.parse_args()
    if args.glmer:
        rows = args.rows or 20_000_000
        folder = write_parquet("glmer", rows, 100_000, 10, 10, binary=True)
        run("yb ~ x + (1 | g)", folder, compare_pandas=args.compare, family="binomial")
        return
    if args.big:
        folder = write_parquet("big", 100_000_000, 1_000_000, 100_000, 100)
        run("y ~ x + (x | g)", folder, compare_pandas=False)
        run("y ~ x + (1 | a) + (1 | b)", folder, compare_pandas=False)
        return
    folder = write_parquet("rows", args.rows or 10_000_000, 100_000, 10_000, 100)
    run("y ~ x + (x | g)", folder, compare_pandas=True)


if __name__ == "__main__":
    main()
