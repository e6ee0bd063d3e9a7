## Random-slope designs whose ML fit is singular, simulated here, with lme4's fit of
## each: the test checks that our optimum is never above lme4's (a singular random slope
## has several rank-one basins, and the search must not stop in a worse one).
##
## Usage: Rscript tools/make_singular_fixtures.R [outdir]
## Writes <outdir>/lme4_singular.json: for each design, its data (y, x, g), lme4's
## deviance (-2 logLik, ML), theta, and whether lme4 flags the fit singular.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
script_dir <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
source(file.path(script_dir, "fixture_helpers.R"))

outdir <- if (length(args) >= 1) args[[1]] else "tests/fixtures"
dir.create(outdir, recursive = TRUE, showWarnings = FALSE)
outfile <- file.path(outdir, "lme4_singular.json")

designs <- list()
for (seed in 1:60) {
  set.seed(seed)
  n_g <- sample(6:20, 1)
  n <- sample(60:200, 1)
  g <- sample.int(n_g, n, replace = TRUE)
  x <- round(rnorm(n), 6)
  sd_int <- sample(c(0, 0.3, 1), 1)
  sd_slope <- sample(c(0, 0.2, 0.6), 1)
  y <- round(1 + 0.5 * x + sd_int * rnorm(n_g)[g] + sd_slope * rnorm(n_g)[g] * x + rnorm(n), 6)
  d <- data.frame(y = y, x = x, g = factor(paste0("g", g)))
  fit <- with_conditions(lmer(y ~ x + (1 + x | g), d, REML = FALSE))
  m <- fit$value
  if (!isSingular(m)) next
  designs[[length(designs) + 1]] <- list(
    seed = seed,
    y = arr(d$y), x = arr(d$x), g = arr(as.character(d$g)),
    deviance = deviance(m),
    theta = arr(getME(m, "theta")),
    warnings = I(fit$warnings)
  )
  if (length(designs) == 16) break
}

out <- list(
  meta = list(
    R = paste(R.version$major, R.version$minor, sep = "."),
    lme4 = as.character(packageVersion("lme4")),
    formula = "y ~ x + (1 + x | g)",
    REML = FALSE,
    generated_by = "tools/make_singular_fixtures.R"
  ),
  designs = designs
)
jsonlite::write_json(json_num(out), outfile, digits = I(17), auto_unbox = TRUE,
                     pretty = TRUE, json_verbatim = TRUE, null = "null", na = "null")
cat("wrote", outfile, "with", length(designs), "singular designs\n")
