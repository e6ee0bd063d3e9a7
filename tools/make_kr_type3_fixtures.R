#!/usr/bin/env Rscript
## -----------------------------------------------------------------------------
## make_kr_type3_fixtures.R -- pbkrtest Kenward-Roger and lmerTest type I/II/III
## F tests on UNBALANCED designs (issue 5).
##
## Usage (from the repository root):
##   Rscript tools/make_kr_type3_fixtures.R tests/fixtures
##
## Writes <outdir>/kr_type3.json.  No data are stored: every model is fitted to a
## data set of tests/fixtures/lme4_lmm.json (written by tools/make_fixtures.R)
## from which the rows with (row number %% modulus) == remainder are removed
## (row numbers 1-based, in the stored order).  The kept row numbers are written
## too, so Python can check that it rebuilt the very same subset.  A derived
## column is listed under `derived`:
##   * N = factor(nitro) in Oats, levels "0", "0.2", "0.4", "0.6".
##
## For every model:
##   * vcov, vcov_adjusted : vcov(m) and pbkrtest::vcovAdj(m) (row-major),
##   * kenward_roger       : lmerTest summary(m, ddf = "Kenward-Roger")
##                           coefficients (SE from vcovAdj, df from Lb_ddf),
##   * satterthwaite       : lmerTest summary(m, ddf = "Satterthwaite"),
##   * anova               : lmerTest anova(m, type, ddf) for type 1, 2, 3 and
##                           ddf Satterthwaite and Kenward-Roger (F value,
##                           NumDF, DenDF, p), and type 3's hypothesis matrices
##                           (lmerTest:::get_contrasts_type3, row-major).
## -----------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(pbkrtest)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
script_dir <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
source(file.path(script_dir, "fixture_helpers.R"))

outdir <- if (length(args) >= 1) args[[1]] else "tests/fixtures"
outfile <- file.path(outdir, "kr_type3.json")
lmm_fixture <- fromJSON(file.path(outdir, "lme4_lmm.json"), simplifyVector = TRUE)

## A data set stored in lme4_lmm.json, factors with their stored levels.
fixture_data <- function(name) {
  spec <- lmm_fixture$data[[name]]
  d <- as.data.frame(spec$columns, stringsAsFactors = FALSE)
  for (column in names(spec$levels)) {
    d[[column]] <- factor(as.character(d[[column]]), levels = as.character(spec$levels[[column]]))
  }
  d
}

models <- list(
  ## Task 1: Kenward-Roger on unbalanced designs (no term contained in another)
  sleepstudy_unbalanced = list(
    dataset = "sleepstudy", modulus = 7, remainder = 3,
    formula = "Reaction ~ Days + (Days | Subject)"),
  oats_unbalanced = list(
    dataset = "Oats", modulus = 5, remainder = 2,
    formula = "yield ~ nitro + Variety + (1 | Block/Variety)"),
  machines_unbalanced = list(
    dataset = "Machines", modulus = 4, remainder = 1,
    formula = "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)"),
  ## Task 2: type III tests with an interaction beside its main effects
  oats_cells = list(
    dataset = "Oats", modulus = 5, remainder = 2, derived = "N",
    formula = "yield ~ Variety * N + (1 | Block/Variety)"),
  orthodont_unbalanced = list(
    dataset = "Orthodont", modulus = 6, remainder = 1,
    formula = "distance ~ age * Sex + (1 | Subject)"),
  oats_slopes = list(
    dataset = "Oats", modulus = 5, remainder = 2,
    formula = "yield ~ nitro * Variety + (1 | Block/Variety)")
)

matrix_rows <- function(m) {
  m <- as.matrix(m)
  list(rownames = arr(rownames(m)), colnames = arr(colnames(m)),
       values = lapply(seq_len(nrow(m)), function(i) arr(unname(m[i, ]))))
}

coef_table <- function(cf) {
  list(term = arr(rownames(cf)), estimate = arr(cf[, "Estimate"]),
       se = arr(cf[, "Std. Error"]), df = arr(cf[, "df"]),
       t = arr(cf[, "t value"]), p = arr(cf[, "Pr(>|t|)"]))
}

anova_table <- function(av) {
  list(term = arr(rownames(av)), numdf = arr(av$NumDF), dendf = arr(av$DenDF),
       F = arr(av[["F value"]]), p = arr(av[["Pr(>F)"]]))
}

out <- list()
out$meta <- list(
  R = paste(R.version$major, R.version$minor, sep = "."),
  lme4 = as.character(packageVersion("lme4")),
  lmerTest = as.character(packageVersion("lmerTest")),
  pbkrtest = as.character(packageVersion("pbkrtest")),
  Matrix = as.character(packageVersion("Matrix")),
  jsonlite = as.character(packageVersion("jsonlite")),
  data = "tests/fixtures/lme4_lmm.json",
  subset = "rows with (row number %% modulus) == remainder removed (1-based)",
  generated_by = "tools/make_kr_type3_fixtures.R"
)
out$models <- list()

for (name in names(models)) {
  spec <- models[[name]]
  full <- fixture_data(spec$dataset)
  kept <- which(seq_len(nrow(full)) %% spec$modulus != spec$remainder)
  d <- full[kept, , drop = FALSE]
  if (identical(spec$derived, "N")) d$N <- factor(d$nitro)
  fit <- lmerTest::lmer(as.formula(spec$formula), data = d, REML = TRUE)
  entry <- list(dataset = spec$dataset, modulus = spec$modulus,
                remainder = spec$remainder, kept_rows = arr(kept),
                derived = spec$derived, formula = spec$formula, reml = TRUE,
                nobs = nobs(fit), theta = arr(getME(fit, "theta")),
                sigma = sigma(fit), fixef = named(fixef(fit)),
                warnings = arr(character(0)))
  entry$vcov <- matrix_rows(vcov(fit))
  entry$vcov_adjusted <- matrix_rows(vcovAdj(fit))
  entry$kenward_roger <- coef_table(summary(fit, ddf = "Kenward-Roger")$coefficients)
  entry$satterthwaite <- coef_table(summary(fit, ddf = "Satterthwaite")$coefficients)
  entry$anova <- list()
  for (type in c(1, 2, 3)) {
    for (ddf in c("Satterthwaite", "Kenward-Roger")) {
      key <- paste0("type", type, "_", if (ddf == "Satterthwaite") "satterthwaite" else "kenward_roger")
      res <- with_conditions(anova(fit, type = type, ddf = ddf))
      entry$anova[[key]] <- anova_table(res$value)
      entry$warnings <- arr(unique(c(entry$warnings, res$warnings)))
    }
  }
  entry$type3_contrasts <- lapply(lmerTest:::get_contrasts_type3(fit), matrix_rows)
  out$models[[name]] <- entry
}

writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null"), outfile)
cat("wrote", outfile, "\n")
