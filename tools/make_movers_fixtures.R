## lme4's fits of the school-movers design (issue 15): 100,000 students in 25,000
## schools, 3 observations each, 5% of the students observed in a second school.
##
## The data are simulated by the package, not by R:
##
##   .venv/bin/python -c "from mixedmodels.datasets.movers import write_movers_csv; \
##       write_movers_csv('/tmp/movers05.csv')"
##   Rscript tools/make_movers_fixtures.R /tmp/movers05.csv tests/fixtures
##
## writes tests/fixtures/lme4_movers.json with, for
##   * lmer(y ~ x + (1 | student) + (1 | school))          (REML, default control)
##   * glmer(passed ~ x + (1 | student) + (1 | school), binomial)   Laplace
## fixef, SEs, theta, sigma, logLik, the REML criterion / deviance, and a few sums
## of the data so that the test can check it simulated the same rows.
##
## glmer runs with tolPwrss = 1e-12 (default 1e-7): lme4's PIRLS stops at a relative
## change of the penalized weighted RSS below tolPwrss, and with 125,000 random effects
## the default leaves the conditional modes, hence the Laplace deviance the optimizer
## sees, noisy in the 6th digit; the tight tolerance gives the Laplace deviance at the
## exact modes, which is what mixedmodels computes (its PIRLS iterates to convergence).
## The number formatting is that of tools/fixture_helpers.R (exact doubles).

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

script_dir <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
source(file.path(script_dir, "fixture_helpers.R"))

args <- commandArgs(trailingOnly = TRUE)
csv <- if (length(args) >= 1) args[[1]] else "/tmp/movers05.csv"
outdir <- if (length(args) >= 2) args[[2]] else "tests/fixtures"
dir.create(outdir, recursive = TRUE, showWarnings = FALSE)
outfile <- file.path(outdir, "lme4_movers.json")

d <- read.csv(csv, colClasses = c("factor", "factor", "numeric", "numeric", "integer"))

record <- function(m, seconds, extra = list()) {
  fe <- fixef(m)
  se <- sqrt(diag(as.matrix(vcov(m))))
  names(se) <- names(fe)
  th <- getME(m, "theta")
  c(list(
    fixef = named(fe),
    se = named(se),
    theta = arr(th),
    theta_names = arr(names(th)),
    sigma = sigma(m),
    loglik = as.numeric(logLik(m)),
    deviance = if (isREML(m)) NULL else deviance(m),
    reml_criterion = if (isREML(m)) as.numeric(REMLcrit(m)) else NULL,
    nobs = nobs(m),
    ngroups = named(vapply(ranef(m), nrow, integer(1))),
    seconds = seconds
  ), extra)
}

timed <- function(expr) {
  t0 <- proc.time()[["elapsed"]]
  fit <- with_conditions(expr)
  fit$seconds <- proc.time()[["elapsed"]] - t0
  fit
}

lmm <- timed(lmer(y ~ x + (1 | student) + (1 | school), data = d))
cat(sprintf("lmer  %.1f s  logLik %.6f\n", lmm$seconds, as.numeric(logLik(lmm$value))))
glmm <- timed(glmer(passed ~ x + (1 | student) + (1 | school), data = d, family = binomial,
                    control = glmerControl(tolPwrss = 1e-12)))
cat(sprintf("glmer %.1f s  logLik %.6f\n", glmm$seconds, as.numeric(logLik(glmm$value))))

ver <- function(p) as.character(packageVersion(p))
out <- list(
  meta = list(
    R = paste(R.version$major, R.version$minor, sep = "."),
    R_version_string = R.version.string,
    lme4 = ver("lme4"),
    Matrix = ver("Matrix"),
    jsonlite = ver("jsonlite"),
    number_format = "shortest of %.15g/%.16g/%.17g that round-trips exactly",
    generated_by = "tools/make_movers_fixtures.R",
    simulator = "mixedmodels.datasets.movers.school_movers() with its defaults"
  ),
  data = list(n = nrow(d), n_students = nlevels(d$student), n_schools = nlevels(d$school),
              sum_x = sum(d$x), sum_y = sum(d$y), sum_passed = sum(d$passed)),
  models = list(
    lmer = record(lmm$value, lmm$seconds,
                  list(formula = "y ~ x + (1 | student) + (1 | school)", reml = TRUE,
                       warnings = arr(lmm$warnings), messages = arr(lmm$messages))),
    glmer = record(glmm$value, glmm$seconds,
                   list(formula = "passed ~ x + (1 | student) + (1 | school)",
                        family = "binomial", nagq = 1L, tolPwrss = 1e-12,
                        warnings = arr(glmm$warnings), messages = arr(glmm$messages)))
  )
)
jsonlite::write_json(json_num(out), outfile, digits = I(17), auto_unbox = TRUE,
                     null = "null", na = "null", pretty = TRUE, json_verbatim = TRUE)
cat("wrote", outfile, "\n")
