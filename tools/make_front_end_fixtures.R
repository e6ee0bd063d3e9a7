#!/usr/bin/env Rscript
## -----------------------------------------------------------------------------
## make_front_end_fixtures.R -- lme4 / nlme / stats parity fixtures for the front end
## (issue 12): formulas with stateful transforms, ordered factors, nlme variance
## functions of the fitted values, varConstPower and varComb, and lm with zero weights.
##
## Usage:
##   Rscript tools/make_front_end_fixtures.R [data_dir] [out_file]
##
## Reads the seed's gpa data (never stored in the fixture) and writes exact doubles.
## -----------------------------------------------------------------------------
suppressPackageStartupMessages({
  library(lme4)
  library(nlme)
  library(jsonlite)
})
args <- commandArgs(trailingOnly = TRUE)
data_dir <- if (length(args) >= 1) args[[1]] else "../shared/data"
out_file <- if (length(args) >= 2) args[[2]] else "tests/fixtures/front_end.json"

levels_json <- fromJSON(file.path(data_dir, "levels.json"))$gpa
gpa <- read.csv(file.path(data_dir, "gpa.csv"))
for (name in names(levels_json)) {
  gpa[[name]] <- factor(as.character(gpa[[name]]), levels = levels_json[[name]])
}
gpa$occ <- factor(gpa$occasion, levels = 0:5, ordered = TRUE)

arr <- function(x) I(unname(x))
lmer_record <- function(m) {
  list(
    formula = deparse1(formula(m)),
    reml = isREML(m),
    fixef_names = arr(names(fixef(m))),
    fixef = arr(fixef(m)),
    se = arr(sqrt(diag(as.matrix(vcov(m))))),
    theta = arr(getME(m, "theta")),
    sigma = sigma(m),
    loglik = as.numeric(logLik(m)),
    predict_head = arr(head(predict(m), 12)),
    predict_newdata = arr(predict(m, newdata = gpa[c(10, 3, 11), ]))
  )
}

out <- list(
  meta = list(
    R = R.version.string,
    lme4 = as.character(packageVersion("lme4")),
    nlme = as.character(packageVersion("nlme"))
  ),
  lmer = list(),
  nlme = list()
)

out$lmer$poly_scale <- lmer_record(
  lmer(gpa ~ poly(occasion, 2) + scale(highgpa) + (1 | student), data = gpa))
out$lmer$ordered <- lmer_record(lmer(gpa ~ occ + sex + (1 | student), data = gpa))
out$lmer$ordered_slope <- lmer_record(
  lmer(gpa ~ poly(occasion, 2) + (scale(occasion) | student), data = gpa))

nlme_record <- function(m) {
  vs <- m$modelStruct$varStruct
  list(
    fixef = arr(fixef(m)),
    sigma = m$sigma,
    loglik = as.numeric(logLik(m)),
    reml = m$method == "REML",
    random_sd = as.numeric(VarCorr(m)[1, "StdDev"]),
    variance_coef = as.list(coef(vs, unconstrained = FALSE, allCoef = TRUE)),
    variance_names = arr(names(coef(vs, unconstrained = FALSE, allCoef = TRUE)))
  )
}
control <- lmeControl(maxIter = 200, msMaxIter = 200, returnObject = TRUE)
fits <- list(
  power_fitted = varPower(),
  exp_fitted = varExp(),
  constpower_highgpa = varConstPower(form = ~ highgpa),
  constpower_fitted = varConstPower(),
  comb_ident_power = varComb(varIdent(form = ~ 1 | sex), varPower(form = ~ highgpa))
)
for (name in names(fits)) {
  for (method in c("REML", "ML")) {
    m <- lme(gpa ~ occasion, random = ~ 1 | student, data = gpa, weights = fits[[name]],
             method = method, control = control)
    out$nlme[[paste(name, method, sep = "_")]] <- nlme_record(m)
  }
}

## R's lm drops zero-weight rows from sigma, the residual df and the log-likelihood
w <- rep(c(0, 1, 2), length.out = nrow(gpa))
fit <- lm(gpa ~ occasion + sex, data = gpa, weights = w)
s <- summary(fit)
out$lm_zero_weights <- list(
  weights = "rep(c(0, 1, 2), length.out = nrow(gpa))",
  coef = arr(coef(fit)),
  se = arr(s$coefficients[, "Std. Error"]),
  sigma = s$sigma,
  df_residual = fit$df.residual,
  loglik = as.numeric(logLik(fit)),
  aic = AIC(fit),
  bic = BIC(fit),
  nobs = nobs(fit),
  r2 = s$r.squared,
  adj_r2 = s$adj.r.squared
)

dir.create(dirname(out_file), recursive = TRUE, showWarnings = FALSE)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), out_file)
