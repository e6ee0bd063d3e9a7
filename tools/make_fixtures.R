#!/usr/bin/env Rscript
## -----------------------------------------------------------------------------
## make_fixtures.R -- generate lme4 parity fixtures for the `mixedmodels` tests.
##
## Usage:
##   Rscript tools/make_fixtures.R tests/fixtures      (or: make fixtures)
##
## Writes <outdir>/lme4_lmm.json containing
##   * meta   : R and package versions used to generate the file,
##   * data   : every data set used, restricted to the columns the models use
##              (factors exported as character vectors, with their levels()
##              order recorded so that Python can rebuild identical reference
##              levels / treatment contrasts),
##   * models : for each fitted lmer model, the quantities the Python port is
##              compared against (fixed effects, standard errors, theta, sigma,
##              log-likelihood, REML criterion, AIC/BIC, VarCorr, conditional
##              modes, fitted values, population-level predictions, ...).
##
## All models are fitted with lme4::lmer using the default control settings.
## Numbers are written with jsonlite's `digits = NA` (maximum precision that
## jsonlite supports, i.e. 15 significant digits).
## -----------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(lme4)
  library(nlme)      # Orthodont, Machines, Oats
  library(mlmRev)    # ScotsSec
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)

## Shared helpers (arr, named, na_null, with_conditions, export_data, varcorr_records,
## ranef_records, unorder), looked up next to this script.
script_dir <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
source(file.path(script_dir, "fixture_helpers.R"))

outdir <- if (length(args) >= 1) args[[1]] else "tests/fixtures"
dir.create(outdir, recursive = TRUE, showWarnings = FALSE)
outfile <- file.path(outdir, "lme4_lmm.json")

## -----------------------------------------------------------------------------
## Data sets
##
## nlme data sets are `groupedData` objects and several of their grouping
## factors are *ordered* factors.  Ordered factors get polynomial contrasts in
## R, so we turn every data set into a plain data.frame and convert the ordered
## grouping factors to unordered ones via factor(as.character(x)), which sorts
## the levels alphabetically.  The models are fitted on exactly the data.frames
## that are exported below.
## -----------------------------------------------------------------------------

## Strip groupedData classes/attributes, keep only plain columns.
plain_df <- function(d) {
  d <- as.data.frame(d)
  out <- data.frame(lapply(d, function(x) {
    attributes(x) <- attributes(x)[intersect(names(attributes(x)),
                                             c("levels", "class", "names"))]
    x
  }), stringsAsFactors = FALSE, check.names = FALSE)
  rownames(out) <- NULL
  out
}

datasets <- list()
datasets$sleepstudy <- plain_df(lme4::sleepstudy)
datasets$Penicillin <- plain_df(lme4::Penicillin)
datasets$Pastes     <- plain_df(lme4::Pastes)
datasets$Dyestuff   <- plain_df(lme4::Dyestuff)
datasets$Dyestuff2  <- plain_df(lme4::Dyestuff2)

orth <- plain_df(nlme::Orthodont)
orth$Subject <- unorder(orth$Subject)          # was ordered; Sex is unordered
datasets$Orthodont <- orth

datasets$ScotsSec <- plain_df(mlmRev::ScotsSec)

mach <- plain_df(nlme::Machines)
mach$Worker <- unorder(mach$Worker)            # was ordered
datasets$Machines <- mach

oats <- plain_df(nlme::Oats)
oats$Block <- unorder(oats$Block)              # was ordered
datasets$Oats <- oats

## Safety net: no ordered factors may remain anywhere.
for (nm in names(datasets)) {
  stopifnot(!any(vapply(datasets[[nm]], is.ordered, logical(1))))
}

## -----------------------------------------------------------------------------
## Model specifications
## -----------------------------------------------------------------------------

spec <- function(dataset, formula, reml = TRUE, ranef = FALSE)
  list(dataset = dataset, formula = formula, reml = reml, ranef = ranef)

models <- list(
  sleepstudy_reml = spec("sleepstudy", "Reaction ~ Days + (Days | Subject)",
                         ranef = TRUE),
  sleepstudy_ml = spec("sleepstudy", "Reaction ~ Days + (Days | Subject)",
                       reml = FALSE),
  sleepstudy_uncorr = spec("sleepstudy", "Reaction ~ Days + (Days || Subject)"),
  sleepstudy_intercept = spec("sleepstudy", "Reaction ~ Days + (1 | Subject)"),
  penicillin = spec("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)",
                    ranef = TRUE),
  pastes = spec("Pastes", "strength ~ 1 + (1 | batch/cask)", ranef = TRUE),
  dyestuff = spec("Dyestuff", "Yield ~ 1 + (1 | Batch)"),
  dyestuff2 = spec("Dyestuff2", "Yield ~ 1 + (1 | Batch)"),  # singular fit
  orthodont = spec("Orthodont", "distance ~ age * Sex + (age | Subject)"),
  scotssec = spec("ScotsSec",
                  "attain ~ verbal * sex + (1 | primary) + (1 | second)"),
  machines = spec("Machines",
                  "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)"),
  oats = spec("Oats", "yield ~ nitro + Variety + (1 | Block/Variety)"),
  sleepstudy_ml_intercept = spec("sleepstudy", "Reaction ~ Days + (1 | Subject)",
                                 reml = FALSE)
)

## -----------------------------------------------------------------------------
## Helpers
## -----------------------------------------------------------------------------

## Fit one model and collect everything the fixtures need.
fit_model <- function(name, s) {
  d <- datasets[[s$dataset]]
  f <- as.formula(s$formula)
  fit <- with_conditions(lmer(f, data = d, REML = s$reml))
  m <- fit$value
  reml <- isREML(m)

  ## For REML fits, lme4 (>= 1.1-x) warns that deviance() is deprecated and
  ## returns the REML criterion.  We record whatever deviance(m) returns
  ## (null if it errors) and keep its warning out of the model's warnings.
  dev <- tryCatch(suppressWarnings(deviance(m)), error = function(e) NULL)

  cat(sprintf("%-24s logLik = %.6f  theta = [%s]%s\n", name,
              as.numeric(logLik(m)),
              paste(sprintf("%.6g", getME(m, "theta")), collapse = ", "),
              if (length(fit$warnings) + length(fit$messages) > 0)
                paste0("\n    conditions: ",
                       paste(c(fit$warnings, fit$messages), collapse = " | "))
              else ""))

  fe <- fixef(m)
  se <- sqrt(diag(as.matrix(vcov(m))))
  names(se) <- names(fe)

  list(
    dataset = s$dataset,
    formula = s$formula,
    reml = reml,
    fixef = named(fe),
    se = named(se),
    theta = arr(getME(m, "theta")),
    theta_names = arr(names(getME(m, "theta"))),
    sigma = sigma(m),
    loglik = as.numeric(logLik(m)),
    deviance = dev,
    reml_criterion = if (reml) REMLcrit(m) else NULL,
    aic = AIC(m),
    bic = BIC(m),
    nobs = nobs(m),
    ngroups = as.list(ngrps(m)),
    is_singular = isSingular(m),
    varcorr = varcorr_records(m),
    ranef = if (s$ranef) ranef_records(m) else NULL,
    fitted_head = arr(head(unname(fitted(m)), 10)),
    predict_no_re_head = arr(head(unname(predict(m, re.form = NA)), 10)),
    warnings = arr(c(fit$warnings, fit$messages))
  )
}

## -----------------------------------------------------------------------------
## Fit all models
## -----------------------------------------------------------------------------

results <- list()
for (nm in names(models)) results[[nm]] <- fit_model(nm, models[[nm]])

## Columns used by the models, per data set (response + all formula vars).
used_cols <- list()
for (s in models) {
  used_cols[[s$dataset]] <- union(used_cols[[s$dataset]],
                                  all.vars(as.formula(s$formula)))
}
data_out <- list()
for (nm in names(used_cols)) {
  data_out[[nm]] <- export_data(datasets[[nm]], used_cols[[nm]])
}

ver <- function(p) as.character(packageVersion(p))
out <- list(
  meta = list(
    R = paste(R.version$major, R.version$minor, sep = "."),
    R_version_string = R.version.string,
    lme4 = ver("lme4"),
    Matrix = ver("Matrix"),
    nlme = ver("nlme"),
    mlmRev = ver("mlmRev"),
    jsonlite = ver("jsonlite"),
    generated_by = "tools/make_fixtures.R"
  ),
  data = data_out,
  models = results
)

jsonlite::write_json(out, outfile, digits = NA, auto_unbox = TRUE,
                     null = "null", na = "null", pretty = TRUE)
cat("wrote", outfile, "\n")
