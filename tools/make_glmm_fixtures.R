#!/usr/bin/env Rscript
## -----------------------------------------------------------------------------
## make_glmm_fixtures.R -- generate lme4 *glmer* parity fixtures for the
## `mixedmodels` tests (companion of tools/make_fixtures.R, which does lmer).
##
## Usage:
##   Rscript tools/make_glmm_fixtures.R tests/fixtures
##
## Writes <outdir>/lme4_glmm.json containing
##   * meta   : R and package versions used to generate the file,
##   * data   : every data set used, restricted to the columns the models use
##              (factors exported as character vectors, with their levels()
##              order recorded so that Python can rebuild identical reference
##              levels / treatment contrasts),
##   * models : for each fitted glmer / glmer.nb model, the quantities the
##              Python port is compared against (fixed effects, standard
##              errors, theta, log-likelihood, deviance, AIC/BIC, VarCorr,
##              conditional modes, fitted values, linear predictors, ...).
##
## All models use the default glmerControl().
##
## Precision: jsonlite (1.8.4) caps numeric output at 15 significant digits
## even with digits = I(17), which is not enough to round-trip a double.  So
## every double is formatted here with the *shortest* of %.15g / %.16g / %.17g
## that parses back to the identical double, and handed to jsonlite as
## verbatim JSON.  Every number in the file therefore round-trips exactly.
## -----------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(lme4)
  library(mlmRev)    # Contraception
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)

## Shared helpers (arr, named, na_null, with_conditions, export_data, varcorr_records,
## ranef_records, unorder), looked up next to this script.
script_dir <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
source(file.path(script_dir, "fixture_helpers.R"))

outdir <- if (length(args) >= 1) args[[1]] else "tests/fixtures"
dir.create(outdir, recursive = TRUE, showWarnings = FALSE)
outfile <- file.path(outdir, "lme4_glmm.json")

## -----------------------------------------------------------------------------
## Data sets
##
## Every data set becomes a plain data.frame; any ordered factor is converted to
## an unordered one via factor(as.character(x)) (alphabetical levels), so that
## no polynomial contrasts can sneak in.  (None of the columns the models use
## is ordered; VerbAgg$resp is, but it is not used.)  The models are fitted on
## exactly the data.frames whose used columns are exported below.
## -----------------------------------------------------------------------------

plain_df <- function(d) {
  d <- as.data.frame(d)
  for (cl in names(d)) if (is.ordered(d[[cl]])) d[[cl]] <- unorder(d[[cl]])
  rownames(d) <- NULL
  d
}

datasets <- list()
datasets$cbpp <- plain_df(lme4::cbpp)

gt <- plain_df(lme4::grouseticks)
gt$YEAR <- factor(gt$YEAR)                     # already a factor (95/96/97)
gt$cHEIGHT <- gt$HEIGHT - mean(gt$HEIGHT)      # (identical to lme4's column)
datasets$grouseticks <- gt

datasets$VerbAgg <- plain_df(lme4::VerbAgg)    # r2 (N/Y), Gender, btype, situ
datasets$Contraception <- plain_df(mlmRev::Contraception)  # use, urban, livch

for (nm in names(datasets)) {
  stopifnot(!any(vapply(datasets[[nm]], is.ordered, logical(1))))
}

## -----------------------------------------------------------------------------
## Model specifications
## -----------------------------------------------------------------------------

spec <- function(dataset, formula, family = "binomial", link = "logit",
                 nagq = 1L, weights = NULL, ranef = FALSE, nb = FALSE,
                 optinfo = FALSE)
  list(dataset = dataset, formula = formula, family = family, link = link,
       nagq = nagq, weights = weights, ranef = ranef, nb = nb,
       optinfo = optinfo)

cbpp_f <- "cbind(incidence, size - incidence) ~ period + (1 | herd)"

models <- list(
  cbpp_laplace = spec("cbpp", cbpp_f, ranef = TRUE, optinfo = TRUE),
  cbpp_agq25 = spec("cbpp", cbpp_f, nagq = 25L, ranef = TRUE),
  cbpp_probit = spec("cbpp", cbpp_f, link = "probit", ranef = TRUE),
  cbpp_prop = spec("cbpp", "incidence/size ~ period + (1 | herd)",
                   weights = "size", ranef = TRUE),
  grouseticks = spec("grouseticks",
                     "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)",
                     family = "poisson", link = "log"),
  verbagg = spec("VerbAgg",
                 "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)"),
  contraception = spec("Contraception",
                       "use ~ age + I(age^2) + urban + livch + (1 | district)"),
  grouseticks_nb = spec("grouseticks",
                        "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)",
                        family = "negative_binomial", link = "log", nb = TRUE),
  cbpp_poisson_offset = spec("cbpp",
                             "incidence ~ period + offset(log(size)) + (1 | herd)",
                             family = "poisson", link = "log", ranef = TRUE)
)

## -----------------------------------------------------------------------------
## Helpers
## -----------------------------------------------------------------------------

## fmt_num() and json_num() (exact doubles in the JSON) are in fixture_helpers.R.

## The fitting call is built as a language object and evaluated in the global
## environment with the data set bound to a global name: glmer.nb() re-evaluates
## its call internally and cannot see a function's local variables.
fit_call <- function(s) {
  assign(".fixture_data", datasets[[s$dataset]], envir = globalenv())
  f <- as.formula(s$formula, env = globalenv())
  if (s$nb) {
    cl <- call("glmer.nb", f, data = quote(.fixture_data))
  } else {
    fam <- call(s$family, link = s$link)
    cl <- call("glmer", f, data = quote(.fixture_data), family = fam,
               nAGQ = s$nagq)
    if (!is.null(s$weights)) cl$weights <- as.name(s$weights)
  }
  cl
}

fit_model <- function(name, s) {
  cl <- fit_call(s)
  fit <- with_conditions(eval(cl, globalenv()))
  m <- fit$value
  fam <- family(m)
  stopifnot(fam$link == s$link)
  if (!s$nb) stopifnot(fam$family == s$family)

  th <- getME(m, "theta")
  cat(sprintf("%-20s logLik = %.6f  theta = [%s]%s\n", name,
              as.numeric(logLik(m)),
              paste(sprintf("%.6g", th), collapse = ", "),
              if (length(fit$warnings) + length(fit$messages) > 0)
                paste0("\n    conditions: ",
                       paste(c(fit$warnings, fit$messages), collapse = " | "))
              else ""))

  fe <- fixef(m)
  se <- sqrt(diag(as.matrix(vcov(m))))
  names(se) <- names(fe)

  out <- list(
    dataset = s$dataset,
    formula = s$formula,
    family = s$family,
    link = fam$link,
    nagq = as.integer(m@devcomp$dims[["nAGQ"]]),
    weights = s$weights,
    fixef = named(fe),
    se = named(se),
    theta = arr(th),
    theta_names = arr(names(th)),
    loglik = as.numeric(logLik(m)),
    deviance = deviance(m),
    aic = AIC(m),
    bic = BIC(m),
    nobs = nobs(m),
    ngroups = as.list(ngrps(m)),
    is_singular = isSingular(m),
    varcorr = varcorr_records(m),
    ranef = if (s$ranef) ranef_records(m) else NULL,
    fitted_head = arr(head(unname(fitted(m)), 10)),
    predict_link_head = arr(head(unname(predict(m, type = "link")), 10)),
    predict_no_re_head = arr(head(unname(predict(m, re.form = NA,
                                                 type = "link")), 10)),
    warnings = arr(c(fit$warnings, fit$messages))
  )
  if (s$nb) out$nb_theta <- getME(m, "glmer.nb.theta")
  if (s$optinfo) out$optinfo_feval <- m@optinfo$feval
  stopifnot(out$nagq == s$nagq)
  out
}

## -----------------------------------------------------------------------------
## Fit all models
## -----------------------------------------------------------------------------

results <- list()
for (nm in names(models)) results[[nm]] <- fit_model(nm, models[[nm]])
rm(".fixture_data", envir = globalenv())

## Columns used by the models, per data set (formula vars + weights column).
used_cols <- list()
for (s in models) {
  used_cols[[s$dataset]] <- union(used_cols[[s$dataset]],
                                  c(all.vars(as.formula(s$formula)),
                                    s$weights))
}
data_out <- list()
for (nm in names(used_cols)) {
  data_out[[nm]] <- export_data(datasets[[nm]], used_cols[[nm]])
}

# Likelihood-ratio test of nested glmer fits (anova.merMod on two GLMMs)
cbpp_null <- suppressWarnings(glmer(cbind(incidence, size - incidence) ~ 1 + (1 | herd),
                                    data = cbpp, family = binomial))
cbpp_full <- suppressWarnings(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd),
                                    data = cbpp, family = binomial))
lrt <- anova(cbpp_null, cbpp_full)
anova_out <- list(
  cbpp_period = list(
    null = "cbind(incidence, size - incidence) ~ 1 + (1 | herd)",
    full = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
    npar = as.numeric(lrt$npar), aic = as.numeric(lrt$AIC), loglik = as.numeric(lrt$logLik),
    chisq = as.numeric(lrt$Chisq[2]), df = as.numeric(lrt$Df[2]),
    p = as.numeric(lrt[["Pr(>Chisq)"]][2])
  )
)

ver <- function(p) as.character(packageVersion(p))
out <- list(
  meta = list(
    R = paste(R.version$major, R.version$minor, sep = "."),
    R_version_string = R.version.string,
    lme4 = ver("lme4"),
    Matrix = ver("Matrix"),
    mlmRev = ver("mlmRev"),
    jsonlite = ver("jsonlite"),
    number_format = "shortest of %.15g/%.16g/%.17g that round-trips exactly",
    generated_by = "tools/make_glmm_fixtures.R"
  ),
  data = data_out,
  models = results,
  anova = anova_out
)

jsonlite::write_json(json_num(out), outfile, digits = I(17), auto_unbox = TRUE,
                     null = "null", na = "null", pretty = TRUE,
                     json_verbatim = TRUE)
cat("wrote", outfile, "\n")
