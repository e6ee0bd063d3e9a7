# Fixtures for predict_interval / resim on glmer fits: merTools' predictInterval(type =
# "probability", include.resid.var = FALSE) and REsim on the seed's speed-dating model
# (binomial) and on lme4's grouseticks (poisson).
# Usage: Rscript tools/make_glmer_interval_fixtures.R [data_dir] [out_file]
#
# predictInterval draws the fixed effects from N(beta, vcov) and every level's random
# effects from N(mode, condVar) on the link scale, takes quantiles of the linear predictor
# and maps them through the inverse link.  With include.resid.var = TRUE (its default)
# merTools adds N(0, 1) noise on the link scale for a binomial glmer ("sigma set at 1"),
# which is not a quantity of the model, so the reference is drawn without it.  The numbers
# are Monte Carlo quantiles (n.sims draws each); the tests compare them within Monte Carlo
# error.  Rows: a fixed subset of the fitted rows, recorded by their 1-based row number in
# the data file (speed dating) or the data set (grouseticks).
suppressPackageStartupMessages({
  library(lme4)
  library(merTools)
  library(jsonlite)
})
args <- commandArgs(trailingOnly = TRUE)
data_dir <- if (length(args) >= 1) args[[1]] else "../shared/data"
out_file <- if (length(args) >= 2) args[[2]] else "tests/fixtures/glmer_intervals.json"
n_sims <- 4000

intervals <- function(model, frame, rows, seed) {
  newdata <- frame[rows, , drop = FALSE]
  pi <- suppressWarnings(predictInterval(model, newdata = newdata, level = 0.95,
                                         n.sims = n_sims, type = "probability",
                                         include.resid.var = FALSE, seed = seed))
  fixed <- suppressWarnings(predictInterval(model, newdata = newdata, which = "fixed",
                                            level = 0.95, n.sims = n_sims,
                                            type = "probability",
                                            include.resid.var = FALSE, seed = seed + 1))
  set.seed(seed + 2)
  re <- REsim(model, n.sims = 1000)
  cond <- as.data.frame(ranef(model, condVar = TRUE))
  list(
    rows = as.integer(rownames(newdata)),
    n_sims = n_sims,
    fit = pi$fit, lower = pi$lwr, upper = pi$upr,
    fixed_fit = fixed$fit, fixed_lower = fixed$lwr, fixed_upper = fixed$upr,
    # lme4's predictions at the modes, for a check that the rows are the same rows
    predict_response = unname(predict(model, newdata = newdata, type = "response")),
    resim_sd_mean = mean(re$sd),
    condsd_mean = mean(cond$condsd)
  )
}

sd_data <- read.csv(file.path(data_dir, "speed_dating.csv"))
sd_data$decision <- factor(sd_data$decision, levels = c("No", "Yes"))
sd_data$sex <- factor(sd_data$sex, levels = c("Female", "Male"))
sd_data$samerace <- factor(sd_data$samerace, levels = c("No", "Yes"))
sd_data$iid <- factor(sd_data$iid)
sdating <- glmer(decision ~ sex + samerace + attractive_sc + sincere_sc + intelligent_sc +
                   (1 | iid), data = sd_data, family = binomial)
used <- as.integer(rownames(model.frame(sdating)))
sd_rows <- used[round(seq(1, length(used), length.out = 60))]

gt <- as.data.frame(lme4::grouseticks)
gt$cHEIGHT <- gt$HEIGHT - mean(gt$HEIGHT)
rownames(gt) <- NULL
ticks <- glmer(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION), data = gt,
               family = poisson)
gt_rows <- round(seq(1, nrow(gt), length.out = 40))

out <- list(
  versions = list(
    R = R.version.string,
    lme4 = as.character(packageVersion("lme4")),
    merTools = as.character(packageVersion("merTools"))
  ),
  sdating = c(list(formula = deparse1(formula(sdating))),
              intervals(sdating, sd_data, as.character(sd_rows), 2024)),
  grouseticks = c(list(formula = deparse1(formula(ticks))),
                  intervals(ticks, gt, gt_rows, 7))
)
dir.create(dirname(out_file), showWarnings = FALSE, recursive = TRUE)
write_json(out, out_file, digits = NA, auto_unbox = TRUE, pretty = TRUE)
cat("wrote", out_file, "\n")
