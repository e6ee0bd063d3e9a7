# Helpers shared by the fixture scripts in tools/: JSON-friendly records of lme4 fits
# and of the data sets they were fitted to.  Sourced by the make_*_fixtures.R scripts
# next to this file.

## Convert an (ordered) factor to an unordered factor with sorted levels.
unorder <- function(x) factor(as.character(x))

## Keep a vector as a JSON array even if it has length 1 (auto_unbox = TRUE
## would otherwise turn it into a scalar).
arr <- function(x) I(unname(x))

## Named numeric vector -> JSON object {name: value}.
named <- function(x) as.list(x)

## NA -> NULL (written as JSON null) for scalar character fields.
na_null <- function(x) if (length(x) == 0 || is.na(x)) NULL else x

## Evaluate `expr`, collecting warnings and messages instead of printing them.
with_conditions <- function(expr) {
  warns <- character(0)
  msgs <- character(0)
  value <- withCallingHandlers(
    expr,
    warning = function(w) {
      warns <<- c(warns, conditionMessage(w))
      invokeRestart("muffleWarning")
    },
    message = function(m) {
      msgs <<- c(msgs, trimws(conditionMessage(m)))
      invokeRestart("muffleMessage")
    })
  list(value = value, warnings = warns, messages = msgs)
}

## Export one data set: only the columns in `cols`, factors as strings.
export_data <- function(d, cols) {
  cols <- intersect(names(d), cols)      # keep the data set's column order
  columns <- list()
  levs <- list()
  for (cl in cols) {
    x <- d[[cl]]
    if (is.factor(x)) {
      columns[[cl]] <- arr(as.character(x))
      levs[[cl]] <- arr(levels(x))
    } else {
      columns[[cl]] <- arr(as.numeric(x))
    }
  }
  ## An empty named list is written as {} rather than [].
  if (length(levs) == 0) levs <- structure(list(), names = character(0))
  list(columns = columns, levels = levs)
}

## VarCorr as a list of records.
varcorr_records <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  lapply(seq_len(nrow(vc)), function(i) list(
    grp = vc$grp[i],
    var1 = na_null(vc$var1[i]),
    var2 = na_null(vc$var2[i]),
    vcov = vc$vcov[i],
    sdcor = vc$sdcor[i]))
}

## Conditional modes and conditional SDs as a list of records.
ranef_records <- function(m) {
  re <- as.data.frame(ranef(m, condVar = TRUE))
  lapply(seq_len(nrow(re)), function(i) list(
    grpvar = as.character(re$grpvar[i]),
    term = as.character(re$term[i]),
    grp = as.character(re$grp[i]),
    condval = re$condval[i],
    condsd = re$condsd[i]))
}

## Shortest %.15g/%.16g/%.17g representation that round-trips to the same
## double; non-finite values become null.
fmt_num <- function(x) {
  x <- as.numeric(x)
  out <- sprintf("%.15g", x)
  for (p in 16:17) {
    bad <- is.finite(x) & as.numeric(out) != x
    if (any(bad)) out[bad] <- sprintf(paste0("%.", p, "g"), x[bad])
  }
  stopifnot(all(!is.finite(x) | as.numeric(out) == x))
  out[!is.finite(x)] <- "null"
  out
}

## Recursively replace doubles by verbatim JSON (arrays stay arrays when
## wrapped in arr() or of length != 1; length-1 plain doubles become scalars).
json_num <- function(x) {
  if (is.list(x) && !is.data.frame(x)) {
    if (length(x) == 0) return(x)
    nm <- names(x)
    x <- lapply(x, json_num)
    names(x) <- nm
    return(x)
  }
  if (is.double(x)) {
    s <- fmt_num(x)
    if (inherits(x, "AsIs") || length(x) != 1)
      return(structure(paste0("[", paste(s, collapse = ", "), "]"),
                       class = "json"))
    return(structure(s, class = "json"))
  }
  x
}
