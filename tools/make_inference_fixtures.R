#!/usr/bin/env Rscript
## -----------------------------------------------------------------------------
## make_inference_fixtures.R -- R reference numbers for mixedmodels' inference.
##
## Usage (from the repository root):
##   Rscript tools/make_inference_fixtures.R tests/fixtures
##
## Writes <outdir>/lme4_inference.json with
##   * meta          : R and package versions,
##   * profile_ci    : lme4 confint(method = "profile", oldNames = FALSE),
##   * wald_ci       : lme4 confint(method = "Wald", oldNames = FALSE),
##   * satterthwaite : lmerTest summary() coefficients (Estimate, SE, df, t, p)
##                     and anova(type = 3) F tests,
##   * kenward_roger : pbkrtest Kenward-Roger df (per coefficient, via
##                     lmerTest's ddf = "Kenward-Roger") and adjusted SEs
##                     (sqrt(diag(vcovAdj))),
##   * anova_gpa     : lme4 anova() of the seed's gpa random-intercept and
##                     random-slope fits (ML refits).  The gpa data are the
##                     seed's and are never committed: only the numbers are.
##
## The data of the other models are NOT duplicated: they are read from
## tests/fixtures/lme4_lmm.json (written by tools/make_fixtures.R), with the
## factor levels stored there, so that R and Python fit the very same data.
## -----------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(pbkrtest)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
outdir <- if (length(args) >= 1) args[[1]] else "tests/fixtures"
outfile <- file.path(outdir, "lme4_inference.json")
lmm_fixture <- fromJSON(file.path(outdir, "lme4_lmm.json"), simplifyVector = TRUE)

## Rebuild a data set stored in lme4_lmm.json, factors with their stored levels.
fixture_data <- function(name) {
  spec <- lmm_fixture$data[[name]]
  d <- as.data.frame(spec$columns, stringsAsFactors = FALSE)
  for (column in names(spec$levels)) {
    d[[column]] <- factor(as.character(d[[column]]), levels = as.character(spec$levels[[column]]))
  }
  d
}

ci_table <- function(ci) {
  list(param = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]))
}

models <- list(
  sleepstudy = list(dataset = "sleepstudy",
                    formula = "Reaction ~ Days + (Days | Subject)", reml = TRUE),
  dyestuff = list(dataset = "Dyestuff", formula = "Yield ~ 1 + (1 | Batch)", reml = TRUE),
  penicillin = list(dataset = "Penicillin",
                    formula = "diameter ~ 1 + (1 | plate) + (1 | sample)", reml = TRUE),
  scotssec = list(dataset = "ScotsSec",
                  formula = "attain ~ verbal * sex + (1 | primary) + (1 | second)",
                  reml = TRUE),
  oats = list(dataset = "Oats", formula = "yield ~ nitro + Variety + (1 | Block/Variety)",
              reml = TRUE)
)

profile_models <- c("sleepstudy", "dyestuff")
satterthwaite_models <- c("sleepstudy", "penicillin", "scotssec", "oats")
kr_models <- c("sleepstudy", "oats", "penicillin")

out <- list()
out$meta <- list(
  R = paste(R.version$major, R.version$minor, sep = "."),
  lme4 = as.character(packageVersion("lme4")),
  lmerTest = as.character(packageVersion("lmerTest")),
  pbkrtest = as.character(packageVersion("pbkrtest")),
  Matrix = as.character(packageVersion("Matrix")),
  jsonlite = as.character(packageVersion("jsonlite")),
  data = "tests/fixtures/lme4_lmm.json",
  generated_by = "tools/make_inference_fixtures.R"
)
out$models <- list()

for (name in names(models)) {
  spec <- models[[name]]
  d <- fixture_data(spec$dataset)
  fit <- lme4::lmer(as.formula(spec$formula), data = d, REML = spec$reml)
  entry <- list(dataset = spec$dataset, formula = spec$formula, reml = spec$reml)
  if (name %in% profile_models) {
    entry$profile_ci <- ci_table(confint(fit, method = "profile", oldNames = FALSE,
                                         quiet = TRUE))
    entry$wald_ci <- ci_table(confint(fit, method = "Wald", oldNames = FALSE))
  }
  if (name %in% satterthwaite_models) {
    lt <- lmerTest::lmer(as.formula(spec$formula), data = d, REML = spec$reml)
    cf <- summary(lt, ddf = "Satterthwaite")$coefficients
    entry$satterthwaite <- list(term = rownames(cf), estimate = unname(cf[, "Estimate"]),
                                se = unname(cf[, "Std. Error"]), df = unname(cf[, "df"]),
                                t = unname(cf[, "t value"]), p = unname(cf[, "Pr(>|t|)"]))
    av <- anova(lt, type = 3, ddf = "Satterthwaite")
    entry$anova_satterthwaite <- list(term = rownames(av), numdf = unname(av$NumDF),
                                      dendf = unname(av$DenDF), F = unname(av[["F value"]]),
                                      p = unname(av[["Pr(>F)"]]))
  }
  if (name %in% kr_models) {
    lt <- lmerTest::lmer(as.formula(spec$formula), data = d, REML = spec$reml)
    cf <- summary(lt, ddf = "Kenward-Roger")$coefficients
    entry$kenward_roger <- list(term = rownames(cf), se = unname(cf[, "Std. Error"]),
                                df = unname(cf[, "df"]), t = unname(cf[, "t value"]),
                                p = unname(cf[, "Pr(>|t|)"]),
                                se_adjusted = unname(sqrt(diag(as.matrix(vcovAdj(fit))))),
                                se_unadjusted = unname(sqrt(diag(as.matrix(vcov(fit))))))
  }
  out$models[[name]] <- entry
}

## Likelihood-ratio test of the seed's two gpa fits (data from ../shared, never stored).
gpa_path <- file.path("..", "shared", "data", "gpa.csv")
if (file.exists(gpa_path)) {
  gpa <- read.csv(gpa_path)
  gpa$student <- factor(gpa$student)
  m_int <- lme4::lmer(gpa ~ occasion + (1 | student), data = gpa)
  m_slope <- lme4::lmer(gpa ~ occasion + (1 + occasion | student), data = gpa)
  av <- anova(m_int, m_slope)
  out$anova_gpa <- list(
    formulas = c("gpa ~ occasion + (1 | student)", "gpa ~ occasion + (1 + occasion | student)"),
    npar = unname(av$npar), AIC = unname(av$AIC), BIC = unname(av$BIC),
    logLik = unname(av$logLik), deviance = unname(av$deviance),
    Chisq = unname(av$Chisq), Df = unname(av$Df), p = unname(av[["Pr(>Chisq)"]]),
    refit = "REML fits refitted by ML (lme4 anova default refit = TRUE)"
  )
}

writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null"), outfile)
cat("wrote", outfile, "\n")
