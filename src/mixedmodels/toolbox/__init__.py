"""The seed's toolbox on fitted models: simulation, plots, equations, tidy tables, report.

Owns simulation and prediction intervals (:mod:`.simulate`: ``simulate``, ``resim``,
``predict_interval``), the plot accessor and its figures (:mod:`.plots`, with notebook
display in :mod:`._display`), the model equation in LaTeX and MathML (:mod:`.latex`,
:mod:`.mathml`), broom.mixed's ``tidy``/``glance``/``augment`` (:mod:`.broom`), the
after-the-fit methods shared by every model (:mod:`.analysis`, :mod:`.methods`) and the HTML
report (:mod:`.report`).

May import: the engines and :mod:`mixedmodels.inference`; a fitted model is an argument,
named through :mod:`mixedmodels._protocols`, never imported (the models import this
package).  Nothing in the numerics imports this package, and this ``__init__`` imports
nothing, so matplotlib loads only with the first plot.
"""
