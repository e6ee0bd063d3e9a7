"""``report``: one self-contained HTML page about a fitted model (see :func:`report`)."""

from ._html import report, report_html

__all__ = ["report", "report_html"]
