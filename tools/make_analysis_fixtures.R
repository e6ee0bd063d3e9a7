#!/usr/bin/env Rscript
## -----------------------------------------------------------------------------
## make_analysis_fixtures.R -- R reference numbers for what lme4 users reach for
## after the fit: emmeans, performance::r2_nakagawa, simulate() and broom.mixed.
##
## Usage (from the repository root):
##   Rscript tools/make_analysis_fixtures.R [data_dir] [outdir]
##
## Writes <outdir>/analysis.json with
##   * meta        : R and package versions,
##   * emmeans     : the seed's pupils model (emmeans(~ ses), pairwise Tukey) with
##                   Kenward-Roger and Satterthwaite df; the speed-dating glmer
##                   (~ samerace, link and response scale, pairwise),
##   * r2          : r2_nakagawa on the seed's gpa random-slope model, pupils
##                   crossed, speed dating, and grouseticks (poisson);
##                   summary.lm's R² of the seed's lm,
##   * simulate    : moments of lme4's simulate() on sleepstudy (5000 draws,
##                   re.form = NA and NULL) and two rows' draws (for a KS test),
##   * broom       : broom.mixed's tidy()/glance()/augment() column names and values,
##   * lm          : anova.lm, confint.lm and emmeans of an lm on the seed's gpa data.
##
## The seed's data (gpa, pupils, speed_dating) are read from data_dir (default
## ../shared/data, with levels.json for factor level order) and never stored here:
## only numbers are.  sleepstudy is lme4's; grouseticks is rebuilt as in
## tools/make_glmm_fixtures.R.
## -----------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest, exclude = "lmer")
  library(pbkrtest)
  library(emmeans)
  library(performance)
  library(broom.mixed)
  library(jsonlite)
})

script_dir <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
source(file.path(script_dir, "fixture_helpers.R"))

args <- commandArgs(trailingOnly = TRUE)
data_dir <- if (length(args) >= 1) args[[1]] else file.path("..", "shared", "data")
outdir <- if (length(args) >= 2) args[[2]] else "tests/fixtures"
outfile <- file.path(outdir, "analysis.json")

levels_json <- fromJSON(file.path(data_dir, "levels.json"))
seed_data <- function(name) {
  d <- read.csv(file.path(data_dir, paste0(name, ".csv")))
  for (cl in names(levels_json[[name]])) {
    d[[cl]] <- factor(as.character(d[[cl]]), levels = levels_json[[name]][[cl]])
  }
  d
}
gpa <- seed_data("gpa")
gpa$student <- factor(gpa$student)
pupils <- seed_data("pupils")
speed_dating <- seed_data("speed_dating")

## Plain lists of a data frame's columns (factors as strings).
columns_of <- function(d) {
  out <- lapply(d, function(x) {
    if (is.factor(x) || is.character(x)) arr(as.character(x)) else arr(as.numeric(x))
  })
  names(out) <- names(d)
  out
}

out <- list()
out$meta <- list(
  R = paste(R.version$major, R.version$minor, sep = "."),
  lme4 = as.character(packageVersion("lme4")),
  emmeans = as.character(packageVersion("emmeans")),
  pbkrtest = as.character(packageVersion("pbkrtest")),
  lmerTest = as.character(packageVersion("lmerTest")),
  performance = as.character(packageVersion("performance")),
  insight = as.character(packageVersion("insight")),
  broom.mixed = as.character(packageVersion("broom.mixed")),
  jsonlite = as.character(packageVersion("jsonlite")),
  generated_by = "tools/make_analysis_fixtures.R"
)

## --- emmeans -----------------------------------------------------------------
pupils_formula <- "achievement ~ sex + ses + (1 | primary_school_id) + (1 | secondary_school_id)"
pupils_crossed <- lmer(as.formula(pupils_formula), data = pupils)
sd_formula <- "decision ~ sex + samerace + attractive_sc + sincere_sc + intelligent_sc + (1 | iid)"
sdating <- glmer(as.formula(sd_formula), data = speed_dating, family = binomial)

emm_record <- function(e) {
  means <- as.data.frame(e$emmeans)
  contrasts <- as.data.frame(e$contrasts)
  list(means = columns_of(means), contrasts = columns_of(contrasts))
}
out$emmeans <- list(
  pupils = list(
    formula = pupils_formula,
    specs = "ses",
    kenward_roger = emm_record(emmeans(pupils_crossed, pairwise ~ ses, adjust = "tukey",
                                       lmer.df = "kenward-roger")),
    satterthwaite = emm_record(emmeans(pupils_crossed, pairwise ~ ses, adjust = "tukey",
                                       lmer.df = "satterthwaite")),
    satterthwaite_holm = emm_record(emmeans(pupils_crossed, pairwise ~ ses, adjust = "holm",
                                            lmer.df = "satterthwaite")),
    by_sex = list(means = columns_of(as.data.frame(
      emmeans(pupils_crossed, ~ ses | sex, lmer.df = "satterthwaite"))))
  ),
  speed_dating = list(
    formula = sd_formula,
    specs = "samerace",
    link = emm_record(emmeans(sdating, pairwise ~ samerace)),
    response = emm_record(emmeans(sdating, pairwise ~ samerace, type = "response")),
    at_attractive = list(means = columns_of(as.data.frame(
      emmeans(sdating, ~ samerace, at = list(attractive_sc = 1), type = "response"))))
  )
)

## --- r2_nakagawa ---------------------------------------------------------------
r2_record <- function(m) {
  r2 <- r2_nakagawa(m)
  list(marginal = unname(r2$R2_marginal), conditional = unname(r2$R2_conditional))
}
gpa_slopes <- lmer(gpa ~ occasion + (1 + occasion | student), data = gpa)
gt <- as.data.frame(lme4::grouseticks)
gt$cHEIGHT <- gt$HEIGHT - mean(gt$HEIGHT)
grouse <- glmer(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION), data = gt,
                family = poisson)
gpa_lm <- lm(gpa ~ occasion, data = gpa)
gpa_lm2 <- lm(gpa ~ occasion + sex + job, data = gpa)
lm_anova <- as.data.frame(anova(gpa_lm2))
out$lm <- list(
  formula = "gpa ~ occasion + sex + job",
  anova = list(term = arr(trimws(rownames(lm_anova))[-nrow(lm_anova)]),
               Df = arr(lm_anova$Df[-nrow(lm_anova)]),
               F = arr(lm_anova$`F value`[-nrow(lm_anova)]),
               p = arr(lm_anova$`Pr(>F)`[-nrow(lm_anova)]),
               den_df = gpa_lm2$df.residual),
  confint = list(lower = arr(confint(gpa_lm2)[, 1]), upper = arr(confint(gpa_lm2)[, 2])),
  emmeans_job = columns_of(as.data.frame(emmeans(gpa_lm2, ~ job)))
)
out$r2 <- list(
  gpa_slopes = c(list(formula = "gpa ~ occasion + (1 + occasion | student)"),
                 r2_record(gpa_slopes)),
  pupils_crossed = c(list(formula = pupils_formula), r2_record(pupils_crossed)),
  speed_dating = c(list(formula = sd_formula), r2_record(sdating)),
  grouseticks = c(list(formula = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)"),
                  r2_record(grouse)),
  gpa_lm = list(formula = "gpa ~ occasion", r2 = summary(gpa_lm)$r.squared,
                adj_r2 = summary(gpa_lm)$adj.r.squared)
)

## --- simulate ----------------------------------------------------------------
sleep <- lmer(Reaction ~ Days + (Days | Subject), data = sleepstudy)
nsim <- 5000L
unconditional <- as.matrix(simulate(sleep, nsim = nsim, seed = 101))
conditional <- as.matrix(simulate(sleep, nsim = nsim, seed = 102, re.form = NULL))
moments <- function(s) list(
  mean = arr(rowMeans(s)),
  var = arr(apply(s, 1, var)),
  cov_1_2 = cov(s[1, ], s[2, ]),      # same subject: the random effects' covariance
  cov_1_11 = cov(s[1, ], s[11, ])     # different subjects: 0
)
out$simulate <- list(
  formula = "Reaction ~ Days + (Days | Subject)",
  nsim = nsim,
  unconditional = c(moments(unconditional), list(row1 = arr(unconditional[1, 1:2000]),
                                                 row10 = arr(unconditional[10, 1:2000]))),
  conditional = moments(conditional)
)

## --- broom.mixed -------------------------------------------------------------
tidy_record <- function(t) {
  t <- as.data.frame(t)
  list(columns = arr(names(t)), values = columns_of(t))
}
pupils_lt <- as_lmerModLmerTest(pupils_crossed)
out$broom <- list(
  pupils = list(
    tidy = tidy_record(tidy(pupils_crossed, conf.int = TRUE)),
    tidy_fixed = tidy_record(tidy(pupils_crossed, effects = "fixed")),
    tidy_fixed_satterthwaite = tidy_record(tidy(pupils_lt, effects = "fixed",
                                                conf.int = TRUE)),
    tidy_ran_pars = tidy_record(tidy(pupils_crossed, effects = "ran_pars")),
    tidy_ran_vals = tidy_record(tidy(pupils_crossed, effects = "ran_vals", conf.int = TRUE)),
    glance = tidy_record(glance(pupils_crossed)),
    augment_columns = arr(names(augment(pupils_crossed))),
    augment = columns_of(as.data.frame(augment(pupils_crossed))[1:20, c(
      ".fitted", ".resid", ".hat", ".cooksd", ".fixed", ".mu", ".wtres")])
  ),
  gpa_slopes = list(
    tidy_ran_pars = tidy_record(tidy(gpa_slopes, effects = "ran_pars")),
    glance_ml = tidy_record(glance(update(gpa_slopes, REML = FALSE)))
  ),
  speed_dating = list(
    tidy = tidy_record(tidy(sdating, conf.int = TRUE)),
    glance = tidy_record(glance(sdating)),
    augment_columns = arr(suppressWarnings(names(augment(sdating)))),
    augment = columns_of(suppressWarnings(as.data.frame(augment(sdating)))[1:20, c(
      ".fitted", ".resid", ".fixed", ".mu", ".eta")])
  )
)

writeLines(toJSON(json_num(out), auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null",
                  json_verbatim = TRUE),
           outfile)
cat("wrote", outfile, "\n")
