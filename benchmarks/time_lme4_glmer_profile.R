# Times lme4's profile intervals of a glmer fit on a CSV written by
# benchmarks/bench_inference.py.
# Usage: Rscript time_lme4_glmer_profile.R data.csv "formula" family repeats factor1,factor2
# Prints "<median confint(method = 'profile') seconds>" on its last line.
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
data <- read.csv(args[1])
for (name in strsplit(args[5], ",")[[1]]) data[[name]] <- factor(data[[name]])
form <- as.formula(args[2])
family <- get(args[3], mode = "function")
repeats <- as.integer(args[4])
fit <- glmer(form, data, family = family)
invisible(confint(fit, method = "profile", quiet = TRUE))  # warm-up
times <- numeric(repeats)
for (i in seq_len(repeats)) {
  times[i] <- system.time(confint(fit, method = "profile", quiet = TRUE))[["elapsed"]]
}
cat(sprintf("%.6f\n", median(times)))
