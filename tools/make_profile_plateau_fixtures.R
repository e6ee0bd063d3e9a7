# Fixture for profile intervals whose trace turns non-monotone far from the estimate: the
# correlation of a random slope whose profile meets a plateau where the slope SD reaches 0.
# Usage:
#   python tools/profile_plateau_data.py > plateau.csv
#   Rscript tools/make_profile_plateau_fixtures.R plateau.csv [out_file]
#
# The reference interval is read off a dense lme4 profile (delta.cutoff = 1/100, i.e. ζ
# steps of about 0.04 instead of lme4's default 1/8): on the branch of the trace through
# the estimate, the points closest to ζ = ±1.96 are interpolated by a cubic in ζ.  lme4's
# default confint(profile) is recorded as well, for comparison (its coarse back-spline
# is off by ~1e-2 at such ends, or fails on the non-monotone trace).
suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
args <- commandArgs(trailingOnly = TRUE)
script_dir <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
source(file.path(script_dir, "fixture_helpers.R"))
data_file <- args[[1]]
out_file <- if (length(args) >= 2) args[[2]] else "tests/fixtures/profile_plateau.json"

d <- read.csv(data_file, colClasses = c("numeric", "numeric", "character"))
d$g <- factor(d$g, levels = unique(d$g))
m <- lmer(y ~ x + (1 + x | g), data = d)
parm <- "cor_x.(Intercept)|g"  # .sig02, the second variance parameter

dense_ends <- function(pr, level = 0.95) {
  tab <- as.data.frame(pr)
  tab <- tab[tab$.par == parm, c(".zeta", parm)]
  names(tab) <- c("zeta", "value")
  tab <- tab[order(tab$value), ]
  est <- which.min(abs(tab$zeta))
  # the monotone branch through the estimate: extend while ζ keeps increasing
  lo <- est
  while (lo > 1 && tab$zeta[lo - 1] < tab$zeta[lo]) lo <- lo - 1
  hi <- est
  while (hi < nrow(tab) && tab$zeta[hi + 1] > tab$zeta[hi]) hi <- hi + 1
  branch <- tab[lo:hi, ]
  z <- qnorm(c((1 - level) / 2, 1 - (1 - level) / 2))
  sapply(z, function(target) {
    k <- order(abs(branch$zeta - target))[1:4]
    fit <- lm(value ~ poly(zeta, 3, raw = TRUE), data = branch[k, ])
    unname(predict(fit, newdata = data.frame(zeta = target)))
  })
}

dense <- profile(m, which = 2, delta.cutoff = 1 / 100, maxpts = 2000, signames = FALSE)
coarse <- profile(m, which = 2, signames = FALSE)
coarse_ci <- tryCatch(unname(confint(coarse)[1, ]), error = function(e) c(NA, NA))
dense_tab <- as.data.frame(dense)
dense_tab <- dense_tab[dense_tab$.par == parm, ]

out <- list(
  versions = list(
    R = R.version.string,
    lme4 = as.character(packageVersion("lme4"))
  ),
  data = list(plateau = export_data(d, c("y", "x", "g"))),
  formula = "y ~ x + (1 + x | g)",
  parameter = "cor_x.(Intercept)|g",
  reference = arr(dense_ends(dense)),
  lme4_default = arr(coarse_ci),
  dense_points = nrow(dense_tab),
  dense_zeta = arr(dense_tab$.zeta),
  dense_value = arr(dense_tab[[parm]]),
  deviance_ml = deviance(refitML(m))
)
dir.create(dirname(out_file), showWarnings = FALSE, recursive = TRUE)
write_json(out, out_file, digits = NA, auto_unbox = TRUE, pretty = TRUE)
cat("wrote", out_file, "\n")
