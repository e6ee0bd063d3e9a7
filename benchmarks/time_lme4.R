# Times lme4::lmer on a CSV written by benchmarks/run.py.
# Usage: Rscript time_lme4.R data.csv "formula" repeats REML
# Prints "<median seconds> <logLik>" on its last line.
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
data <- read.csv(args[1])
# grouping columns and strings become factors, as in the Python run
for (name in names(data)) {
  if (is.character(data[[name]])) data[[name]] <- factor(data[[name]])
}
for (name in c("Subject", "student", "primary_school_id", "secondary_school_id", "s", "d", "dept", "g", "a", "b")) {
  if (name %in% names(data)) data[[name]] <- factor(data[[name]])
}
form <- as.formula(args[2])
repeats <- as.integer(args[3])
reml <- as.logical(args[4])
fit <- lmer(form, data, REML = reml)  # warm-up
times <- numeric(repeats)
for (i in seq_len(repeats)) {
  times[i] <- system.time(fit <- lmer(form, data, REML = reml))[["elapsed"]]
}
cat(sprintf("%.6f %.10f\n", median(times), as.numeric(logLik(fit))))
