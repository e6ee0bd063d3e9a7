"""Reading a residual structure's columns from the model's data (shared by the variance
functions and the correlation structures)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DataError


def numeric_column(frame: pd.DataFrame, name: str, owner: str) -> np.ndarray:
    column = frame[name]
    if isinstance(column.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(
        column.dtype
    ):
        raise DataError(
            f"{owner}: column '{name}' must be numeric. Got {column.dtype}; convert it, "
            f"e.g. data['{name}'].astype(float)."
        )
    return column.to_numpy(dtype=float)
