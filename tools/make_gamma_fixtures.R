#!/usr/bin/env Rscript
## -----------------------------------------------------------------------------
## make_gamma_fixtures.R -- lme4 parity fixtures for Gamma and inverse Gaussian
## glmer fits (families whose dispersion is estimated).
##
## Usage:
##   Rscript tools/make_gamma_fixtures.R tests/fixtures
##
## Writes <outdir>/lme4_gamma.json with
##   * meta   : R and package versions,
##   * data   : data sets simulated here with fixed seeds (stored in full, so the
##              Python tests never need R),
##   * models : per model two lme4 fits, `default` (glmerControl()) and `tight`
##              (glmerControl(tolPwrss = 1e-13)), and the stage-2 deviance function
##              with tolPwrss = 1e-13 evaluated at the default fit's estimates.
##
## Why two fits: lme4 stops PIRLS when the penalized deviance changes by less than
## tolPwrss = 1e-7 (relative).  For Gamma and inverse Gaussian the Laplace criterion
## takes the dispersion from the conditional deviance, so it is not stationary in the
## conditional modes at their PIRLS optimum and moves to first order with the
## unconverged modes: the default fit optimizes a slightly noisy criterion.  The
## tight fit is the optimum of the converged criterion, which is what mixedmodels
## computes; `criterion_at_default` measures the default fit's error.
##
## Each fit records fixef, SEs (sqrt(diag(vcov))), the full vcov, theta, sigma,
## VarCorr, logLik, deviance(m), AIC/BIC, devcomp$cmp, nobs, ngroups, the number of
## function evaluations, the heads of fitted / predict values, and any warnings.
## The default fit of the first model also stores the conditional modes.
## -----------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(lme4)
  library(statmod)   # rinvgauss, for the inverse Gaussian data
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
script_dir <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
source(file.path(script_dir, "fixture_helpers.R"))

outdir <- if (length(args) >= 1) args[[1]] else "tests/fixtures"
dir.create(outdir, recursive = TRUE, showWarnings = FALSE)
outfile <- file.path(outdir, "lme4_gamma.json")

TIGHT <- 1e-13

## -----------------------------------------------------------------------------
## Simulated data sets (each with its own seed, so adding one changes no other)
## -----------------------------------------------------------------------------

datasets <- list()

## (1) 600 rows, 40 groups of unequal sizes, one covariate; two responses:
##     y  ~ Gamma(shape 3) with a log link, random intercept SD 0.5;
##     yi ~ Gamma(shape 5) with an inverse link (mean 1 / (0.5 + 0.1 x + b)), SD 0.05;
##     w, prior weights in [0.5, 2] (y was drawn without them).
set.seed(20240607)
n <- 600; ng <- 40
g <- factor(sample(rep(seq_len(ng), length.out = n)))
x <- rnorm(n)
b <- rnorm(ng, 0, 0.5)
mu <- exp(1 + 0.4 * x + b[g])
y <- rgamma(n, shape = 3, rate = 3 / mu)
bi <- rnorm(ng, 0, 0.05)
mui <- 1 / (0.5 + 0.1 * x + bi[g])
yi <- rgamma(n, shape = 5, rate = 5 / mui)
w <- round(runif(n, 0.5, 2), 3)   # prior weights for gamma_weighted
datasets$gamma_groups <- data.frame(y = y, yi = yi, x = x, g = g, w = w)

## (2) crossed subjects x items (40 x 20, one row each) with a random slope of x by
##     subject: log mean 0.5 + 0.3 x + a_subj + c_subj x + d_item, Gamma shape 4.
set.seed(20240608)
subj <- factor(sprintf("s%02d", rep(1:40, each = 20)))
item <- factor(sprintf("i%02d", rep(1:20, times = 40)))
x <- round(runif(800, -1, 1), 3)
a <- rnorm(40, 0, 0.4); cs <- rnorm(40, 0, 0.2); di <- rnorm(20, 0, 0.3)
mu <- exp(0.5 + 0.3 * x + a[subj] + cs[subj] * x + di[item])
y <- rgamma(800, shape = 4, rate = 4 / mu)
datasets$gamma_crossed <- data.frame(y = y, x = x, subj = subj, item = item)

## (3) inverse Gaussian, 500 rows, 30 groups, shape lambda = 4 (dispersion 1/4):
##     y  with a log link, mean exp(0.3 + 0.5 x + b), random intercept SD 0.3;
##     yc with R's canonical link, mean 1 / sqrt(0.5 + 0.1 x + b), SD 0.05.
set.seed(20240609)
n <- 500; ng <- 30
g <- factor(sample(rep(seq_len(ng), length.out = n)))
x <- rnorm(n)
b <- rnorm(ng, 0, 0.3)
mu <- exp(0.3 + 0.5 * x + b[g])
y <- statmod::rinvgauss(n, mean = mu, shape = 4)
bc <- rnorm(ng, 0, 0.05)
muc <- 1 / sqrt(0.5 + 0.1 * x + bc[g])
yc <- statmod::rinvgauss(n, mean = muc, shape = 4)
datasets$ig_groups <- data.frame(y = y, yc = yc, x = x, g = g)

## -----------------------------------------------------------------------------
## Models
## -----------------------------------------------------------------------------

spec <- function(dataset, formula, family, link, ranef = FALSE, weights = NULL)
  list(dataset = dataset, formula = formula, family = family, link = link,
       ranef = ranef, weights = weights)

models <- list(
  gamma_log = spec("gamma_groups", "y ~ x + (1 | g)", "Gamma", "log", ranef = TRUE),
  gamma_crossed = spec("gamma_crossed", "y ~ x + (1 | subj) + (1 | item)", "Gamma", "log"),
  gamma_slope = spec("gamma_crossed", "y ~ x + (1 + x | subj)", "Gamma", "log"),
  gamma_inverse = spec("gamma_groups", "yi ~ x + (1 | g)", "Gamma", "inverse"),
  gamma_identity = spec("gamma_groups", "y ~ x + (1 | g)", "Gamma", "identity"),
  gamma_weighted = spec("gamma_groups", "y ~ x + (1 | g)", "Gamma", "log", weights = "w"),
  ig_log = spec("ig_groups", "y ~ x + (1 | g)", "inverse.gaussian", "log")
)

## lme4 1.1-31 cannot fit the inverse Gaussian with its canonical link on data made
## with that link (PIRLS reaches η < 0): the error is recorded, not a fit.
canonical <- spec("ig_groups", "yc ~ x + (1 | g)", "inverse.gaussian", "1/mu^2")
canonical_error <- tryCatch({
  glmer(as.formula(canonical$formula), data = datasets$ig_groups,
        family = inverse.gaussian(link = "1/mu^2"))
  NULL
}, error = function(e) conditionMessage(e))

fit_once <- function(s, tol, devfun_only = FALSE) {
  fam <- get(s$family)(link = s$link)
  ctrl <- if (is.null(tol)) glmerControl() else glmerControl(tolPwrss = tol)
  .fixture_data <- datasets[[s$dataset]]
  .fixture_data$.weights <- if (is.null(s$weights)) 1 else .fixture_data[[s$weights]]
  with_conditions(glmer(as.formula(s$formula), data = .fixture_data, weights = .weights,
                        family = fam, control = ctrl, devFunOnly = devfun_only))
}

record <- function(fit, s) {
  m <- fit$value
  fe <- fixef(m)
  V <- as.matrix(vcov(m))
  se <- sqrt(diag(V))
  names(se) <- names(fe)
  th <- getME(m, "theta")
  list(
    fixef = named(fe),
    se = named(se),
    vcov = arr(as.vector(t(V))),   # row-major, fixef order
    theta = arr(th),
    theta_names = arr(names(th)),
    sigma = sigma(m),
    loglik = as.numeric(logLik(m)),
    df = attr(logLik(m), "df"),
    deviance = deviance(m),        # lme4: the sum of the deviance residuals
    aic = AIC(m),
    bic = BIC(m),
    cmp = as.list(m@devcomp$cmp[c("ldL2", "ussq", "wrss", "pwrss", "drsum", "dev",
                                  "sigmaML")]),
    nobs = nobs(m),
    ngroups = as.list(ngrps(m)),
    is_singular = isSingular(m),
    feval = m@optinfo$feval,
    varcorr = varcorr_records(m),
    ranef = if (s$ranef) ranef_records(m) else NULL,
    fitted_head = arr(head(unname(fitted(m)), 10)),
    predict_link_head = arr(head(unname(predict(m, type = "link")), 10)),
    predict_no_re_head = arr(head(unname(predict(m, re.form = NA, type = "link")), 10)),
    pearson_head = arr(head(unname(residuals(m, type = "pearson")), 10)),
    deviance_resid_head = arr(head(unname(residuals(m, type = "deviance")), 10)),
    warnings = arr(c(fit$warnings, fit$messages))
  )
}

results <- list()
for (nm in names(models)) {
  s <- models[[nm]]
  default <- fit_once(s, NULL)
  tight <- fit_once(s, TIGHT)
  ## the converged criterion at the default fit's estimates
  devfun <- fit_once(s, TIGHT, devfun_only = TRUE)$value
  at_default <- devfun(c(getME(default$value, "theta"), fixef(default$value)))
  out <- c(s, list(default = record(default, s), tight = record(tight, s),
                   criterion_at_default = at_default))
  cat(sprintf("%-15s dev default %.7f tight %.7f | converged criterion at default %.7f%s\n",
              nm, default$value@devcomp$cmp[["dev"]], tight$value@devcomp$cmp[["dev"]],
              at_default,
              if (length(default$warnings) + length(tight$warnings) > 0)
                paste0("\n    warnings: ", paste(unique(c(default$warnings, tight$warnings)),
                                              collapse = " | "))
              else ""))
  results[[nm]] <- out
}

data_out <- list()
for (nm in names(datasets)) data_out[[nm]] <- export_data(datasets[[nm]], names(datasets[[nm]]))

ver <- function(p) as.character(packageVersion(p))
out <- list(
  meta = list(
    R = paste(R.version$major, R.version$minor, sep = "."),
    R_version_string = R.version.string,
    lme4 = ver("lme4"),
    Matrix = ver("Matrix"),
    statmod = ver("statmod"),
    jsonlite = ver("jsonlite"),
    tight_tolPwrss = TIGHT,
    number_format = "shortest of %.15g/%.16g/%.17g that round-trips exactly",
    generated_by = "tools/make_gamma_fixtures.R"
  ),
  data = data_out,
  models = results,
  unfitted = list(ig_canonical = c(canonical, list(lme4_error = canonical_error)))
)

jsonlite::write_json(json_num(out), outfile, digits = I(17), auto_unbox = TRUE,
                     null = "null", na = "null", pretty = TRUE, json_verbatim = TRUE)
cat("wrote", outfile, "\n")
