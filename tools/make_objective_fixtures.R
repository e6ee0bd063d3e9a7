#!/usr/bin/env Rscript
## -----------------------------------------------------------------------------
## make_objective_fixtures.R -- R's values for the tools run through each model kind's
## own objective (issue 10): nlme's anova() and intervals() on lme fits with varIdent,
## varPower and corAR1; glmmTMB's confint() (profile and Wald) on ar1/cs/diag terms and
## on a dispformula fit (the analogue of varIdent); lme4's anova() and Wald tests on
## glmer fits.
##
## Usage (from the repository root; the data are read from ../shared/data, never stored):
##   Rscript tools/make_objective_fixtures.R tests/fixtures
## -----------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(nlme)
  library(lme4)
  library(glmmTMB)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
outdir <- if (length(args) >= 1) args[[1]] else "tests/fixtures"
outfile <- file.path(outdir, "objective_tools.json")

gpa <- read.csv(file.path("..", "shared", "data", "gpa.csv"))
gpa$student <- factor(gpa$student, levels = unique(gpa$student))
gpa$occas <- factor(gpa$occas)
gpa$sex <- factor(gpa$sex, levels = c("male", "female"))
gpa$occasion1 <- gpa$occasion + 1

table_of <- function(x) {
  x <- as.matrix(x)
  list(names = rownames(x), lower = unname(x[, 1]), upper = unname(x[, 2]))
}

nlme_intervals <- function(fit) {
  iv <- intervals(fit, which = "all")
  out <- list(fixed = list(names = rownames(iv$fixed), lower = unname(iv$fixed[, "lower"]),
                           est = unname(iv$fixed[, "est."]), upper = unname(iv$fixed[, "upper"])))
  re <- iv$reStruct[[1]]
  out$re <- list(names = rownames(re), lower = re$lower, est = re$est., upper = re$upper)
  out$sigma <- unname(iv$sigma)
  if (!is.null(iv$varStruct)) {
    out$varStruct <- list(names = rownames(iv$varStruct), lower = unname(iv$varStruct[, 1]),
                          est = unname(iv$varStruct[, 2]), upper = unname(iv$varStruct[, 3]))
  }
  if (!is.null(iv$corStruct)) {
    out$corStruct <- list(names = rownames(iv$corStruct), lower = unname(iv$corStruct[, 1]),
                          est = unname(iv$corStruct[, 2]), upper = unname(iv$corStruct[, 3]))
  }
  out
}

nlme_anova <- function(small, large) {
  av <- anova(small, large)
  list(df = unname(av$df), logLik = unname(av$logLik), AIC = unname(av$AIC),
       BIC = unname(av$BIC), L.Ratio = unname(av$L.Ratio[2]), p = unname(av[2, "p-value"]))
}

out <- list(meta = list(R = R.version.string,
                        nlme = as.character(packageVersion("nlme")),
                        lme4 = as.character(packageVersion("lme4")),
                        glmmTMB = as.character(packageVersion("glmmTMB"))))

## ---- nlme ----------------------------------------------------------------------------
plain_ml <- lme(gpa ~ occasion, random = ~ 1 | student, data = gpa, method = "ML")
vi <- lme(gpa ~ occasion, random = ~ 1 | student, data = gpa,
          weights = varIdent(form = ~ 1 | occasion))
vi_ml_small <- lme(gpa ~ occasion, random = ~ 1 | student, data = gpa,
                   weights = varIdent(form = ~ 1 | occasion), method = "ML")
vi_ml_large <- lme(gpa ~ occasion + sex, random = ~ 1 | student, data = gpa,
                   weights = varIdent(form = ~ 1 | occasion), method = "ML")
vp <- lme(gpa ~ occasion, random = ~ 1 | student, data = gpa,
          weights = varPower(form = ~ occasion1))
vp_ml <- update(vp, method = "ML")
ar <- lme(gpa ~ occasion, random = ~ 1 | student, data = gpa,
          correlation = corAR1(form = ~ occasion | student))
ar_ml <- update(ar, method = "ML")
out$nlme <- list(
  varident = list(call = "lme(gpa ~ occasion, ~1 | student, weights = varIdent(form = ~1 | occasion))",
                  logLik = as.numeric(logLik(vi)), intervals = nlme_intervals(vi),
                  se = unname(sqrt(diag(vcov(vi))))),
  varident_anova = c(list(small = "gpa ~ occasion", large = "gpa ~ occasion + sex",
                          method = "ML, both with varIdent(form = ~1 | occasion)"),
                     nlme_anova(vi_ml_small, vi_ml_large)),
  varpower = list(call = "lme(gpa ~ occasion, ~1 | student, weights = varPower(form = ~occasion1))",
                  logLik = as.numeric(logLik(vp)), intervals = nlme_intervals(vp),
                  anova_vs_plain = nlme_anova(plain_ml, vp_ml)),
  ar1 = list(call = "lme(gpa ~ occasion, ~1 | student, correlation = corAR1(form = ~occasion | student))",
             logLik = as.numeric(logLik(ar)), intervals = nlme_intervals(ar),
             anova_vs_plain = nlme_anova(plain_ml, ar_ml))
)

## ---- glmmTMB (ML) -------------------------------------------------------------------
tmb_cases <- list(
  ar1 = "gpa ~ occasion + ar1(0 + occas | student)",
  cs = "gpa ~ occasion + cs(1 + occasion | student)",
  diag = "gpa ~ occasion + diag(1 + occasion | student)"
)
out$glmmTMB <- list()
for (name in names(tmb_cases)) {
  fit <- glmmTMB(as.formula(tmb_cases[[name]]), data = gpa)
  out$glmmTMB[[name]] <- list(
    formula = tmb_cases[[name]], logLik = as.numeric(logLik(fit)),
    wald = table_of(confint(fit, method = "wald", full = TRUE)),
    profile = tryCatch(table_of(confint(fit, method = "profile")),
                       error = function(e) list(error = conditionMessage(e))),
    se = unname(sqrt(diag(vcov(fit)$cond))))
}
fit <- glmmTMB(gpa ~ occasion + (1 | student), dispformula = ~ factor(occasion), data = gpa)
out$glmmTMB$dispformula <- list(
  formula = "gpa ~ occasion + (1 | student), dispformula = ~factor(occasion)",
  logLik = as.numeric(logLik(fit)),
  wald = table_of(confint(fit, method = "wald", full = TRUE)),
  profile = tryCatch(table_of(confint(fit, method = "profile")),
                     error = function(e) list(error = conditionMessage(e))),
  se = unname(sqrt(diag(vcov(fit)$cond))))

## ---- lme4 glmer ----------------------------------------------------------------------
sd <- read.csv(file.path("..", "shared", "data", "speed_dating.csv"))
levels_json <- fromJSON(file.path("..", "shared", "data", "levels.json"))
for (col in names(levels_json$speed_dating)) {
  sd[[col]] <- factor(sd[[col]], levels = levels_json$speed_dating[[col]])
}
sd$iid <- factor(sd$iid)
sd <- sd[complete.cases(sd[, c("attractive_sc", "sincere_sc")]), ]  # both fits on the same rows
small <- glmer(decision ~ sex + samerace + (1 | iid), data = sd, family = binomial)
large <- glmer(decision ~ sex + samerace + attractive_sc + sincere_sc + (1 | iid),
               data = sd, family = binomial)
av <- anova(small, large)
b <- fixef(large)
V <- as.matrix(vcov(large))
terms <- attr(terms(large), "term.labels")
assign <- attr(getME(large, "X"), "assign")
wald <- lapply(seq_along(terms), function(k) {
  idx <- which(assign == k)
  chisq <- as.numeric(t(b[idx]) %*% solve(V[idx, idx, drop = FALSE], b[idx]))
  list(term = terms[k], df = length(idx), chisq = chisq,
       p = pchisq(chisq, length(idx), lower.tail = FALSE))
})
out$glmer <- list(
  small = "decision ~ sex + samerace + (1 | iid)",
  large = "decision ~ sex + samerace + attractive_sc + sincere_sc + (1 | iid)",
  anova = list(npar = unname(av$npar), logLik = unname(av$logLik), Chisq = unname(av$Chisq),
               Df = unname(av$Df), p = unname(av[["Pr(>Chisq)"]])),
  wald_type3 = wald,
  wald_ci = table_of(confint(large, method = "Wald", oldNames = FALSE)),
  se = unname(sqrt(diag(V))))

writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null"), outfile)
cat("wrote", outfile, "\n")
