"""The seed's toolbox on fitted models: simulation, plots, equations, tidy tables, report.

Owns simulation and prediction intervals (:mod:`.simulate`: ``simulate``, ``resim``,
``predict_interval``), the mixed models' plot accessor and its figures (:mod:`.plots`,
drawing on each group's own fit, :mod:`.group_fits`, and the marginal covariance of chosen
groups, :mod:`.marginal`), an lm fit's plots (:mod:`.lm_plots`), the plots' shared style and
model inputs (:mod:`._plot_style`, :mod:`._plot_inputs`) and notebook display
(:mod:`._display`), the model equation in LaTeX and MathML (:mod:`.latex`,
:mod:`.mathml`), broom.mixed's ``tidy``/``glance``/``augment`` (:mod:`.broom`), the
after-the-fit methods shared by every model (:mod:`.analysis`, :mod:`.methods`) and the HTML
report (:mod:`.report`).

May import: the engines and :mod:`mixedmodels.inference`; a fitted model is an argument,
named through :mod:`mixedmodels._protocols`, never imported (the models import this
package).  Nothing in the numerics imports this package, and this ``__init__`` imports
nothing, so matplotlib loads only with the first plot.
"""
