#!/usr/bin/env Rscript
## -----------------------------------------------------------------------------
## make_residual_fixtures.R -- nlme / glmmTMB parity fixtures for residual variance
## functions, residual correlation structures and structured random-effect covariances.
##
## Usage:
##   Rscript tools/make_residual_fixtures.R tests/fixtures
##
## Writes <outdir>/residual_structures.json with
##   * meta   : R and package versions,
##   * data   : each data set, restricted to the used columns, factors as strings with
##              their levels() order (rebuilt by tests/conftest.py::fixture_frame),
##   * models : per fit, the call, REML flag, fixed effects and SEs, sigma, logLik,
##              random-effect SDs and the residual parameters as nlme reports them
##              (coef(..., unconstrained = FALSE)).
## nlme's grouped data are turned into plain data.frames with unordered factors; rows
## are ordered by group (as nlme orders them), so "order within group" is the row order.
## -----------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(nlme)
  library(glmmTMB)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
outdir <- if (length(args) >= 1) args[[1]] else "tests/fixtures"
dir.create(outdir, recursive = TRUE, showWarnings = FALSE)
outfile <- file.path(outdir, "residual_structures.json")

plain <- function(d, columns) {
  d <- as.data.frame(d)[, columns, drop = FALSE]
  for (name in names(d)) {
    x <- d[[name]]
    if (is.factor(x)) {
      d[[name]] <- factor(as.character(x), levels = sort(unique(as.character(x))))
    } else {
      d[[name]] <- as.numeric(x)
    }
  }
  rownames(d) <- NULL
  d
}

export_data <- function(d) {
  levels <- list()
  columns <- list()
  for (name in names(d)) {
    if (is.factor(d[[name]])) {
      levels[[name]] <- levels(d[[name]])
      columns[[name]] <- as.character(d[[name]])
    } else {
      columns[[name]] <- d[[name]]
    }
  }
  list(columns = columns, levels = levels)
}

## Ovary: follicles over the cycle, the sine/cosine terms precomputed
ovary <- plain(Ovary, c("Mare", "Time", "follicles"))
ovary$sin1 <- sin(2 * pi * ovary$Time)
ovary$cos1 <- cos(2 * pi * ovary$Time)
ovary <- ovary[order(ovary$Mare), ]   # stable: keeps time order within mare
rownames(ovary) <- NULL
ovary$visit <- ave(seq_len(nrow(ovary)), ovary$Mare, FUN = seq_along)
ovary_gaps <- ovary[ovary$visit %% 4 != 0, ]
rownames(ovary_gaps) <- NULL

orthodont <- plain(Orthodont, c("distance", "age", "Subject", "Sex"))
orthodont$Sex <- factor(as.character(orthodont$Sex), levels = c("Male", "Female"))
orthodont <- orthodont[order(orthodont$Subject), ]
rownames(orthodont) <- NULL

bodyweight <- plain(BodyWeight, c("weight", "Time", "Rat", "Diet"))
bodyweight$Rat <- factor(as.character(bodyweight$Rat),
                         levels = as.character(sort(as.integer(unique(as.character(bodyweight$Rat))))))
bodyweight <- bodyweight[order(bodyweight$Rat, bodyweight$Time), ]
rownames(bodyweight) <- NULL

## crossed random effects with a residual SD per stratum
set.seed(20240611)
crossed <- expand.grid(a = 1:30, b = 1:20)
crossed$a <- factor(sprintf("a%02d", crossed$a))
crossed$b <- factor(sprintf("b%02d", crossed$b))
crossed$stratum <- factor(c("low", "mid", "high")[(as.integer(crossed$a) + as.integer(crossed$b)) %% 3 + 1],
                          levels = c("high", "low", "mid"))
crossed$x <- rnorm(nrow(crossed))
sd_stratum <- c(high = 2.0, low = 0.7, mid = 1.2)[as.character(crossed$stratum)]
crossed$y <- 1 + 0.5 * crossed$x + rnorm(30, sd = 0.8)[as.integer(crossed$a)] +
  rnorm(20, sd = 0.5)[as.integer(crossed$b)] + rnorm(nrow(crossed), sd = sd_stratum)

fixed_table <- function(est, se) {
  lapply(seq_along(est), function(i) list(term = names(est)[i], estimate = unname(est[i]),
                                          se = unname(se[i])))
}

lme_record <- function(fit, call, python) {
  var_struct <- fit$modelStruct$varStruct
  cor_struct <- fit$modelStruct$corStruct
  vc <- VarCorr(fit)
  sds <- suppressWarnings(as.numeric(vc[, "StdDev"]))
  rec <- list(
    engine = "nlme", call = call, python = python,
    reml = fit$method == "REML",
    fixed = fixed_table(fixef(fit), sqrt(diag(vcov(fit)))),
    sigma = fit$sigma,
    loglik = as.numeric(logLik(fit)),
    re_sd = head(sds, -1),
    re_names = head(rownames(vc), -1)
  )
  if (!is.null(var_struct)) {
    rec$variance_coef <- as.list(coef(var_struct, unconstrained = FALSE))
    if (inherits(var_struct, "varIdent")) {
      rec$variance_levels <- attr(var_struct, "groupNames")
    }
  }
  if (!is.null(cor_struct)) {
    rec$correlation_coef <- as.list(coef(cor_struct, unconstrained = FALSE))
  }
  rec
}

models <- list()

fit <- lme(follicles ~ sin1 + cos1, data = ovary, random = ~ 1 | Mare,
           correlation = corAR1())
models$ovary_ar1 <- lme_record(fit,
  "lme(follicles ~ sin1 + cos1, random = ~1 | Mare, correlation = corAR1())",
  list(formula = "follicles ~ sin1 + cos1 + (1 | Mare)", data = "ovary",
       correlation = list(type = "CorAR1")))

fit <- lme(follicles ~ sin1 + cos1, data = ovary, random = ~ 1 | Mare,
           correlation = corAR1(), method = "ML")
models$ovary_ar1_ml <- lme_record(fit,
  "lme(follicles ~ sin1 + cos1, random = ~1 | Mare, correlation = corAR1(), method = 'ML')",
  list(formula = "follicles ~ sin1 + cos1 + (1 | Mare)", data = "ovary", reml = FALSE,
       correlation = list(type = "CorAR1")))

fit <- lme(distance ~ age + Sex, data = orthodont, random = ~ 1 | Subject,
           weights = varIdent(form = ~ 1 | Sex))
models$orthodont_varident <- lme_record(fit,
  "lme(distance ~ age + Sex, random = ~1 | Subject, weights = varIdent(form = ~1 | Sex))",
  list(formula = "distance ~ age + Sex + (1 | Subject)", data = "orthodont",
       variance = list(type = "VarIdent", by = "Sex")))

fit <- lme(distance ~ age, data = orthodont, random = ~ age | Subject,
           correlation = corAR1(form = ~ 1 | Subject))
models$orthodont_slopes_ar1 <- lme_record(fit,
  "lme(distance ~ age, random = ~age | Subject, correlation = corAR1(form = ~1 | Subject))",
  list(formula = "distance ~ age + (age | Subject)", data = "orthodont",
       correlation = list(type = "CorAR1", group = "Subject")))

## integer times with gaps: every fourth visit of Ovary dropped, the visit number kept as
## time, so neighbours two visits apart have correlation phi^2, as nlme's corAR1(~ visit)
fit <- lme(follicles ~ sin1 + cos1, data = ovary_gaps, random = ~ 1 | Mare,
           correlation = corAR1(form = ~ visit | Mare))
models$ovary_ar1_gaps <- lme_record(fit,
  "lme(follicles ~ sin1 + cos1, random = ~1 | Mare, correlation = corAR1(form = ~visit | Mare))",
  list(formula = "follicles ~ sin1 + cos1 + (1 | Mare)", data = "ovary_gaps",
       correlation = list(type = "CorAR1", time = "visit", group = "Mare")))

fit <- lme(weight ~ Time * Diet, data = bodyweight, random = ~ Time | Rat,
           weights = varPower(form = ~ Time))
models$bodyweight_varpower <- lme_record(fit,
  "lme(weight ~ Time * Diet, random = ~Time | Rat, weights = varPower(form = ~Time))",
  list(formula = "weight ~ Time * Diet + (Time | Rat)", data = "bodyweight",
       variance = list(type = "VarPower", covariate = "Time")))

fit <- lme(weight ~ Time * Diet, data = bodyweight, random = ~ 1 | Rat,
           weights = varExp(form = ~ Time), correlation = corCAR1(form = ~ Time | Rat))
models$bodyweight_varexp_car1 <- lme_record(fit,
  "lme(weight ~ Time * Diet, random = ~1 | Rat, weights = varExp(form = ~Time), correlation = corCAR1(form = ~Time | Rat))",
  list(formula = "weight ~ Time * Diet + (1 | Rat)", data = "bodyweight",
       variance = list(type = "VarExp", covariate = "Time"),
       correlation = list(type = "CorCAR1", time = "Time", group = "Rat")))

## crossed random effects + a residual SD per stratum: glmmTMB's dispformula (ML)
fit <- glmmTMB(y ~ x + (1 | a) + (1 | b), data = crossed, dispformula = ~ stratum)
disp <- fixef(fit)$disp  # log residual variance: reference level + contrasts
sd_levels <- exp(0.5 * (disp[1] + c(0, disp[-1])))  # gaussian: log sigma^2
models$crossed_varident_glmmtmb <- list(
  engine = "glmmTMB",
  call = "glmmTMB(y ~ x + (1 | a) + (1 | b), dispformula = ~stratum)",
  python = list(formula = "y ~ x + (1 | a) + (1 | b)", data = "crossed", reml = FALSE,
                variance = list(type = "VarIdent", by = "stratum")),
  reml = FALSE,
  fixed = fixed_table(fixef(fit)$cond, sqrt(diag(vcov(fit)$cond))),
  sigma = unname(sd_levels[1]),
  loglik = as.numeric(logLik(fit)),
  re_sd = c(attr(VarCorr(fit)$cond$a, "stddev"), attr(VarCorr(fit)$cond$b, "stddev")),
  re_names = c("a", "b"),
  variance_coef = as.list(setNames(sd_levels[-1] / sd_levels[1], levels(crossed$stratum)[-1])),
  variance_levels = levels(crossed$stratum)
)

## glmmTMB structured covariances (ML) on simulated panel data: subjects x 5 times,
## subject effects with unequal SDs and a correlation matrix `corr`, plus residual noise.
## The seeds are ones for which glmmTMB's fits are interior (sigma away from 0, |rho| < 1).
make_panel <- function(seed, n, corr, resid_sd) {
  set.seed(seed)
  panel <- expand.grid(time = 1:5, id = 1:n)
  panel$id <- factor(sprintf("s%03d", panel$id))
  panel$tf <- factor(paste0("t", panel$time))
  panel$x <- rnorm(nrow(panel))
  sds <- c(1.0, 1.2, 1.1, 1.4, 1.6)
  b <- matrix(rnorm(n * 5), n, 5) %*% chol(diag(sds) %*% corr %*% diag(sds))
  panel$y <- 2 + 0.4 * panel$time + 0.3 * panel$x + b[cbind(as.integer(panel$id), panel$time)] +
    rnorm(nrow(panel), sd = resid_sd)
  panel
}
equal_corr <- matrix(0.5, 5, 5)
diag(equal_corr) <- 1
panel <- make_panel(4, 120, equal_corr, 1.0)
panel_ar <- make_panel(7, 80, toeplitz(c(1, 0.6, 0.35, 0.15, 0.05)), 0.6)

structured_record <- function(structure, data_name) {
  data <- get(data_name)
  formula <- sprintf("y ~ time + x + %s(0 + tf | id)", structure)
  fit <- glmmTMB(as.formula(formula), data = data)
  vc <- VarCorr(fit)$cond$id
  ## glmmTMB's SEs come from the observed information of (beta, theta) jointly; lme4 and
  ## nlme use (X' V^-1 X)^-1 at the estimates, computed here from glmmTMB's V
  X <- model.matrix(~ time + x, data)
  block <- unclass(vc)[1:5, 1:5] + sigma(fit)^2 * diag(5)
  V <- kronecker(diag(nlevels(data$id)), block)   # rows are ordered by id, then time
  gls_se <- sqrt(diag(solve(t(X) %*% solve(V, X))))
  list(
    engine = "glmmTMB", call = sprintf("glmmTMB(%s)", formula),
    python = list(formula = formula, data = data_name, reml = FALSE),
    reml = FALSE,
    fixed = fixed_table(fixef(fit)$cond, sqrt(diag(vcov(fit)$cond))),
    gls_se = unname(gls_se),
    sigma = sigma(fit), loglik = as.numeric(logLik(fit)),
    re_sd = unname(attr(vc, "stddev")),
    re_cor = unname(attr(vc, "correlation")[, 1])
  )
}
models$panel_cs_glmmtmb <- structured_record("cs", "panel")
models$panel_toep_glmmtmb <- structured_record("toep", "panel")
models$panel_ar1_glmmtmb <- structured_record("ar1", "panel_ar")

out <- list(
  meta = list(
    r_version = R.version.string,
    nlme = as.character(packageVersion("nlme")),
    glmmTMB = as.character(packageVersion("glmmTMB")),
    generated_by = "tools/make_residual_fixtures.R"
  ),
  data = list(
    ovary = export_data(ovary),
    ovary_gaps = export_data(ovary_gaps),
    orthodont = export_data(orthodont),
    bodyweight = export_data(bodyweight),
    crossed = export_data(crossed[, c("y", "x", "a", "b", "stratum")]),
    panel = export_data(panel[, c("y", "time", "x", "id", "tf")]),
    panel_ar = export_data(panel_ar[, c("y", "time", "x", "id", "tf")])
  ),
  models = models
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), outfile)
cat("wrote", outfile, "\n")
