# Times lme4's profile intervals and parametric bootstrap on a CSV written by
# benchmarks/bench_inference.py.
# Usage: Rscript time_lme4_inference.R data.csv "formula" repeats nsim
# Prints "<median profile seconds> <median bootMer seconds>" on its last line.
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
data <- read.csv(args[1])
for (name in names(data)) {
  if (is.character(data[[name]])) data[[name]] <- factor(data[[name]])
}
form <- as.formula(args[2])
repeats <- as.integer(args[3])
nsim <- as.integer(args[4])
fit <- lmer(form, data)
invisible(confint(fit, method = "profile", quiet = TRUE))  # warm-up
profile_times <- numeric(repeats)
boot_times <- numeric(repeats)
for (i in seq_len(repeats)) {
  profile_times[i] <- system.time(confint(fit, method = "profile", quiet = TRUE))[["elapsed"]]
  boot_times[i] <- system.time(bootMer(fit, fixef, nsim = nsim, seed = i))[["elapsed"]]
}
cat(sprintf("%.6f %.6f\n", median(profile_times), median(boot_times)))
