#!/usr/bin/env Rscript
## -----------------------------------------------------------------------------
## make_glmer_profile_fixtures.R -- lme4 likelihood profiles of glmer fits.
##
## Usage (from the repository root):
##   Rscript tools/make_glmer_profile_fixtures.R tests/fixtures
##
## Writes <outdir>/glmer_profile.json with
##   * meta   : R and package versions,
##   * models : for each glmer fit
##       - profile_ci : confint(m, method = "profile", oldNames = FALSE),
##       - traces     : per parameter, the points of profile(m, signames = FALSE)
##                      (the profiled value and its signed root deviance .zeta),
##       - seconds    : elapsed time of that confint() call (for information).
##
## The data are NOT duplicated: they are read from tests/fixtures/lme4_glmm.json
## (written by tools/make_glmm_fixtures.R) with the factor levels stored there, so
## that R and Python fit the very same data.  All fits use the default glmerControl(),
## so lme4 profiles with the fit's own optimizer (Nelder_Mead for glmer's stage 2).
## -----------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
outdir <- if (length(args) >= 1) args[[1]] else "tests/fixtures"
outfile <- file.path(outdir, "glmer_profile.json")
glmm_fixture <- fromJSON(file.path(outdir, "lme4_glmm.json"), simplifyVector = TRUE)

## Rebuild a data set stored in lme4_glmm.json, factors with their stored levels.
fixture_data <- function(name) {
  spec <- glmm_fixture$data[[name]]
  d <- as.data.frame(spec$columns, stringsAsFactors = FALSE)
  for (column in names(spec$levels)) {
    d[[column]] <- factor(as.character(d[[column]]), levels = as.character(spec$levels[[column]]))
  }
  d
}

models <- list(
  cbpp = list(dataset = "cbpp", family = "binomial", nagq = 1L,
              formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"),
  cbpp_agq = list(dataset = "cbpp", family = "binomial", nagq = 9L,
                  formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"),
  grouseticks = list(dataset = "grouseticks", family = "poisson", nagq = 1L,
                     formula = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD)"),
  ## a correlated random slope: SDs and a correlation profiled together (~45 s in lme4)
  contraception = list(dataset = "Contraception", family = "binomial", nagq = 1L,
                       formula = "use ~ urban + (urban | district)")
)

out <- list()
out$meta <- list(
  R = paste(R.version$major, R.version$minor, sep = "."),
  lme4 = as.character(packageVersion("lme4")),
  Matrix = as.character(packageVersion("Matrix")),
  jsonlite = as.character(packageVersion("jsonlite")),
  data = "tests/fixtures/lme4_glmm.json",
  generated_by = "tools/make_glmer_profile_fixtures.R"
)
out$models <- list()

for (name in names(models)) {
  spec <- models[[name]]
  d <- fixture_data(spec$dataset)
  fit <- glmer(as.formula(spec$formula), data = d, family = spec$family, nAGQ = spec$nagq)
  seconds <- system.time(
    ci <- confint(fit, method = "profile", oldNames = FALSE, quiet = TRUE)
  )[["elapsed"]]
  prof <- as.data.frame(profile(fit, signames = FALSE))
  traces <- list()
  for (parameter in levels(prof$.par)) {
    rows <- prof[prof$.par == parameter, ]
    traces[[parameter]] <- list(value = unname(rows[[parameter]]), zeta = unname(rows$.zeta))
  }
  out$models[[name]] <- list(
    dataset = spec$dataset, formula = spec$formula, family = spec$family,
    nagq = spec$nagq,
    theta = unname(getME(fit, "theta")), fixef = as.list(fixef(fit)),
    deviance = -2 * as.numeric(logLik(fit)),
    profile_ci = list(param = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2])),
    traces = traces,
    seconds = seconds
  )
  cat(name, ":", seconds, "s\n")
}

writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null"), outfile)
cat("wrote", outfile, "\n")
