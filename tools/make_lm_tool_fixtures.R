#!/usr/bin/env Rscript
## -----------------------------------------------------------------------------
## make_lm_tool_fixtures.R -- R reference numbers for the lm cells of the model x
## tool matrix (issue 10): what an R user of lm() gets from the tools that lmer
## fits also have.
##
## Usage (from the repository root):
##   Rscript tools/make_lm_tool_fixtures.R [data_dir] [outdir]
##
## Writes <outdir>/lm_tools.json with
##   * meta      : R and package versions,
##   * anova     : anova.lm(m0, m1) between nested fits (Res.Df, RSS, Df, Sum of Sq,
##                 F, Pr(>F)) and logLik of each, on the seed's gpa data,
##   * predict   : predict.lm(m1, newdata, interval = "prediction" / "confidence")
##                 on the first 12 rows, and on the fitted rows of a weighted fit
##                 with its own weights passed (R's default assumes weight 1),
##   * sigma_ci  : the exact chi-square interval of sigma (a check of the bootstrap).
##
## The seed's gpa data are read from data_dir (default ../shared/data, with
## levels.json for factor level order) and never stored here: only numbers are.
## -----------------------------------------------------------------------------

suppressPackageStartupMessages(library(jsonlite))

script_dir <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
source(file.path(script_dir, "fixture_helpers.R"))

args <- commandArgs(trailingOnly = TRUE)
data_dir <- if (length(args) >= 1) args[[1]] else file.path("..", "shared", "data")
outdir <- if (length(args) >= 2) args[[2]] else "tests/fixtures"
outfile <- file.path(outdir, "lm_tools.json")

levels_json <- fromJSON(file.path(data_dir, "levels.json"))
gpa <- read.csv(file.path(data_dir, "gpa.csv"))
for (cl in names(levels_json$gpa)) {
  gpa[[cl]] <- factor(as.character(gpa[[cl]]), levels = levels_json$gpa[[cl]])
}

m0 <- lm(gpa ~ occasion, data = gpa)
m1 <- lm(gpa ~ occasion + sex + job, data = gpa)
a <- anova(m0, m1)
rows <- gpa[1:12, ]
pred <- predict(m1, newdata = rows, interval = "prediction")
conf <- predict(m1, newdata = rows, interval = "confidence")
gpa$w <- 1 + (gpa$occasion %% 3)
mw <- lm(gpa ~ occasion + sex, data = gpa, weights = w)
pred_w <- predict(mw, interval = "prediction", weights = gpa$w)[1:12, ]
rss <- sum(residuals(m1)^2)
df <- m1$df.residual

out <- list(
  meta = list(R = paste(R.version$major, R.version$minor, sep = "."),
              jsonlite = as.character(packageVersion("jsonlite")),
              generated_by = "tools/make_lm_tool_fixtures.R"),
  anova = list(formulas = arr(c("gpa ~ occasion", "gpa ~ occasion + sex + job")),
               res_df = arr(a$Res.Df), rss = arr(a$RSS), df = arr(a$Df),
               sum_sq = arr(a$`Sum of Sq`), F = arr(a$F), p = arr(a$`Pr(>F)`),
               logLik = arr(c(as.numeric(logLik(m0)), as.numeric(logLik(m1))))),
  predict = list(formula = "gpa ~ occasion + sex + job", rows = 12,
                 prediction = list(fit = arr(pred[, "fit"]), lwr = arr(pred[, "lwr"]),
                                   upr = arr(pred[, "upr"])),
                 confidence = list(fit = arr(conf[, "fit"]), lwr = arr(conf[, "lwr"]),
                                   upr = arr(conf[, "upr"])),
                 weighted = list(formula = "gpa ~ occasion + sex",
                                 weights = "1 + occasion %% 3",
                                 fit = arr(pred_w[, "fit"]), lwr = arr(pred_w[, "lwr"]),
                                 upr = arr(pred_w[, "upr"]))),
  sigma_ci = list(formula = "gpa ~ occasion + sex + job",
                  lower = sqrt(rss / qchisq(0.975, df)), upper = sqrt(rss / qchisq(0.025, df)))
)
writeLines(toJSON(json_num(out), auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null",
                  json_verbatim = TRUE),
           outfile)
cat("wrote", outfile, "\n")
