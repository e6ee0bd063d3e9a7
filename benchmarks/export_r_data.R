# Writes the real data sets the benchmarks read (lme4's InstEval, mlmRev's Chem97) as CSV
# into a cache folder, never committed.
# Usage: Rscript export_r_data.R <cache-dir>
args <- commandArgs(trailingOnly = TRUE)
dir.create(args[1], showWarnings = FALSE, recursive = TRUE)
data("InstEval", package = "lme4")
insteval <- InstEval[, c("y", "service", "s", "d", "dept")]
insteval$service <- as.integer(insteval$service == "1")  # 0/1, the same column everywhere
write.csv(insteval, file.path(args[1], "InstEval.csv"), row.names = FALSE)
data("Chem97", package = "mlmRev")
write.csv(Chem97[, c("score", "gcsecnt", "lea", "school")], file.path(args[1], "Chem97.csv"),
          row.names = FALSE)
cat("done\n")
