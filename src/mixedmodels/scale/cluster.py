"""Where a fit runs: the user's dask.distributed Client, or a LocalCluster for the fit; and
the one primitive every pass uses, a tree sum over partitions with a progress bar."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import DataError
from . import parquet_paths_exist, require_dask

logger = logging.getLogger("mixedmodels.scale")

#: partitions in flight at once per worker thread: bounds the partial sums held by workers
_IN_FLIGHT_PER_THREAD = 2


@contextmanager
def fit_client() -> Iterator[Any]:
    """The Client a user started (a remote cluster) as is; else a LocalCluster on this
    machine, started for the fit and closed after it."""
    require_dask()
    from distributed import Client, LocalCluster, default_client

    try:
        client = default_client()
    except ValueError:
        client = None
    if client is not None:
        yield client
        return
    cores = os.cpu_count() or 1
    cluster = LocalCluster(
        n_workers=cores,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    client = Client(cluster, set_as_default=False)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def as_dask_frame(data: Any, columns: list[str] | None = None) -> Any:
    """A Dask DataFrame as is, or a parquet path / glob / list of paths read lazily."""
    require_dask()
    import dask.dataframe as dd

    if isinstance(data, dd.DataFrame):
        return data if columns is None else data[columns]
    if not parquet_paths_exist(data):
        raise DataError(
            f"No parquet file or folder matches {data!r}. Pass an existing path or glob, a "
            "dask DataFrame or a pandas DataFrame."
        )
    try:
        return dd.read_parquet(data, columns=columns)
    except Exception as exc:  # pyarrow's and fsspec's errors, named
        raise DataError(f"Could not read parquet from {data!r}: {exc}") from None


class PassLog:
    """One line per pass over the partitions: what it did, its rows and its seconds."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def record(self, line: str) -> None:
        self.lines.append(line)
        logger.info(line)


def tree_sum(
    client: Any,
    leaves: list[Any],
    leaf: Callable[..., Any],
    args: tuple = (),
    description: str = "pass",
    log: PassLog | None = None,
) -> Any:
    """``sum(leaf(part, *args) for part in leaves)`` on the cluster, added pairwise as
    results arrive (a tree reduction on the workers); only the total reaches the client.

    ``leaves`` are Dask delayed partitions or futures; at most a few per worker thread are
    in flight, so the partial sums the workers hold stay few.  A bar over partitions shows
    progress (on terminals only)."""
    from distributed import as_completed
    from tqdm.auto import tqdm

    started = time.perf_counter()
    threads = max(1, sum(client.nthreads().values()))
    limit = _IN_FLIGHT_PER_THREAD * threads
    pending = list(leaves)
    pending.reverse()
    leaf_keys: set[str] = set()
    stream = as_completed(loop=client.loop)  # not default_client(): the fit's own may be none

    def launch() -> None:
        part = pending.pop()
        if hasattr(part, "key") and hasattr(part, "dask"):  # a delayed partition
            part = client.compute(part)
        future = client.submit(leaf, part, *args, pure=False)
        leaf_keys.add(future.key)
        stream.add(future)

    for _ in range(min(limit, len(pending))):
        launch()
    held = None
    with tqdm(total=len(leaves), desc=description, unit="partition", disable=None) as bar:
        for future in stream:
            if future.status == "error":
                future.result()  # raises the worker's exception here
            if future.key in leaf_keys:
                bar.update(1)
                if pending:
                    launch()
            if held is None:
                held = future
            else:
                stream.add(client.submit(_add, held, future, pure=False))
                held = None
    total = held.result()
    if log is not None:
        log.record(
            f"{description}: {len(leaves)} partitions in {time.perf_counter() - started:.2f} s"
        )
    return total


def _add(a: Any, b: Any) -> Any:
    return a + b
