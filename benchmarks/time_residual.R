# Times nlme::lme / glmmTMB::glmmTMB on a CSV written by benchmarks/bench_residual.py.
# Usage: Rscript time_residual.R data.csv case repeats
# Prints "<median seconds> <logLik>" on its last line.
suppressPackageStartupMessages({
  library(nlme)
  library(glmmTMB)
})
args <- commandArgs(trailingOnly = TRUE)
data <- read.csv(args[1])
for (name in c("student", "occas", "a", "b", "stratum", "id", "tf")) {
  if (name %in% names(data)) data[[name]] <- factor(data[[name]])
}
if ("occas" %in% names(data)) {
  data$occas <- factor(data$occas, levels = sort(unique(as.character(data$occas))))
}
case <- args[2]
repeats <- as.integer(args[3])
fit_once <- switch(case,
  "gpa varIdent" = function() lme(gpa ~ occasion, data = data, random = ~ 1 | student,
                                   weights = varIdent(form = ~ 1 | occasion)),
  "gpa corAR1" = function() lme(gpa ~ occasion, data = data, random = ~ 1 | student,
                                correlation = corAR1(form = ~ occasion)),
  "gpa ar1 (glmmTMB)" = function() glmmTMB(gpa ~ occasion + ar1(0 + occas | student) +
                                             (1 | student), data = data),
  "gpa diag (glmmTMB)" = function() glmmTMB(gpa ~ occasion + (1 | student) +
                                              diag(0 + occas | student), data = data),
  "crossed varIdent" = function() glmmTMB(y ~ x + (1 | a) + (1 | b), data = data,
                                          dispformula = ~ stratum),
  stop("unknown case ", case)
)
fit <- suppressWarnings(fit_once())  # warm-up
times <- numeric(repeats)
for (i in seq_len(repeats)) {
  times[i] <- system.time(fit <- suppressWarnings(fit_once()))[["elapsed"]]
}
cat(sprintf("%.6f %.10f\n", median(times), as.numeric(logLik(fit))))
