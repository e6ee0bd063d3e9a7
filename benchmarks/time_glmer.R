# Times lme4::glmer (binomial) on a CSV written by benchmarks/bench_glmm.py.
# Usage: Rscript time_glmer.R data.csv "formula" repeats ; prints "<median s> <logLik>".
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
data <- read.csv(args[1], stringsAsFactors = TRUE)
for (name in c("id", "item", "iid")) if (name %in% names(data)) data[[name]] <- factor(data[[name]])
form <- as.formula(args[2])
repeats <- as.integer(args[3])
fit <- glmer(form, data, family = binomial)
times <- numeric(repeats)
for (i in seq_len(repeats)) times[i] <- system.time(fit <- glmer(form, data, family = binomial))[["elapsed"]]
cat(sprintf("%.6f %.10f\n", median(times), as.numeric(logLik(fit))))
