# Times lme4 (lmer, glmer) or glmmTMB on a benchmark CSV, in its own process.
# Usage: Rscript time_r.R ENGINE CSV FORMULA REPEATS REML FAMILY FACTOR,...
# Prints one JSON line: median seconds (after one warm-up fit), logLik, peak memory (VmHWM, MB).
args <- commandArgs(trailingOnly = TRUE)
engine <- args[1]
data <- read.csv(args[2])
form <- as.formula(args[3])
repeats <- as.integer(args[4])
reml <- as.logical(args[5])
family <- args[6]
factors <- strsplit(args[7], ",")[[1]]
for (name in factors) data[[name]] <- factor(data[[name]])
if (engine == "glmmTMB") {
  suppressPackageStartupMessages(library(glmmTMB))
  fit_once <- function() glmmTMB(form, data, REML = reml)
} else {
  suppressPackageStartupMessages(library(lme4))
  fit_once <- if (family == "gaussian") {
    function() lmer(form, data, REML = reml)
  } else {
    function() glmer(form, data, family = family)
  }
}
fit <- suppressWarnings(suppressMessages(fit_once()))
times <- numeric(repeats)
for (i in seq_len(repeats)) {
  times[i] <- system.time(fit <- suppressWarnings(suppressMessages(fit_once())))[["elapsed"]]
}
status <- readLines("/proc/self/status")
peak <- as.numeric(gsub("[^0-9]", "", grep("^VmHWM", status, value = TRUE))) / 1024
cat(sprintf('{"seconds": %.6f, "loglik": %.10f, "evaluations": 0, "peak_mb": %.1f}\n',
            median(times), as.numeric(logLik(fit)), peak))
