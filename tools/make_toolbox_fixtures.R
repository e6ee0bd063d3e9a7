# Fixtures for the toolbox tests: merTools REsim / predictInterval and lme4 lmList on the
# seed's gpa data. Usage: Rscript tools/make_toolbox_fixtures.R [data_dir] [out_file]
# The numbers are Monte Carlo summaries (mean SDs, coverage, widths) that the Python tests
# compare within Monte Carlo tolerances, plus exact lmList coefficients and SEs.
suppressPackageStartupMessages({
  library(lme4)
  library(merTools)
  library(jsonlite)
})
args <- commandArgs(trailingOnly = TRUE)
data_dir <- if (length(args) >= 1) args[[1]] else "../shared/data"
out_file <- if (length(args) >= 2) args[[2]] else "tests/fixtures/toolbox.json"

gpa <- read.csv(file.path(data_dir, "gpa.csv"))
gpa$student <- factor(gpa$student)

summaries <- function(model, seed) {
  set.seed(seed)
  re <- REsim(model, n.sims = 1000)
  cond <- as.data.frame(ranef(model, condVar = TRUE))
  pi <- predictInterval(model, level = 0.95, n.sims = 1000, seed = seed)
  covered <- mean(gpa$gpa >= pi$lwr & gpa$gpa <= pi$upr)
  pi_fixed <- predictInterval(model, which = "fixed", level = 0.95, n.sims = 1000,
                              include.resid.var = FALSE, seed = seed)
  list(
    resim_sd_by_term = tapply(re$sd, re$term, mean),
    resim_mean = re$mean,
    resim_term = re$term,
    resim_group = re$groupID,
    condsd_by_term = tapply(cond$condsd, cond$term, mean),
    pi_coverage = covered,
    pi_mean_width = mean(pi$upr - pi$lwr),
    pi_fit_first = head(pi$fit, 12),
    pi_fixed_mean_width = mean(pi_fixed$upr - pi_fixed$lwr),
    pi_fixed_fit_first = head(pi_fixed$fit, 12)
  )
}

m1 <- lmer(gpa ~ occasion + (1 | student), data = gpa)
m2 <- lmer(gpa ~ occasion + (1 + occasion | student), data = gpa)

sep <- lmList(gpa ~ occasion | student, data = gpa)
cf <- summary(sep)$coefficients  # groups x (Estimate, SE, t, p) x terms
lmlist <- list(
  groups = rownames(cf),
  intercept = unname(cf[, "Estimate", "(Intercept)"]),
  intercept_se = unname(cf[, "Std. Error", "(Intercept)"]),
  slope = unname(cf[, "Estimate", "occasion"]),
  slope_se = unname(cf[, "Std. Error", "occasion"])
)
# lmList's summary pools the residual SD over groups; the per-group lm SEs are what
# the seed's "separate" fits use, so record those too.
per_group <- lapply(split(gpa, gpa$student), function(d) summary(lm(gpa ~ occasion, data = d))$coefficients)
lmlist$intercept_se_separate <- unname(sapply(per_group, function(x) x["(Intercept)", "Std. Error"]))
lmlist$slope_se_separate <- unname(sapply(per_group, function(x) x["occasion", "Std. Error"]))
lmlist$groups_separate <- names(per_group)

out <- list(
  versions = list(
    R = R.version.string,
    lme4 = as.character(packageVersion("lme4")),
    merTools = as.character(packageVersion("merTools"))
  ),
  random_intercept = summaries(m1, 2024),
  random_slope = summaries(m2, 2024),
  lmlist = lmlist
)
dir.create(dirname(out_file), showWarnings = FALSE, recursive = TRUE)
write_json(out, out_file, digits = NA, auto_unbox = TRUE, pretty = TRUE)
cat("wrote", out_file, "\n")
