# Inspect (Shift-Tab) for the R session kernel, sourced into the loader's environment (r_loader.R):
# what IRkernel users expect: the help page as text (R's own Rd2txt), headed by the signature from
# args(); for a function of the session its signature and source; for other values their class and
# str(). Nothing the user wrote is evaluated: the name (checked by the kernel) is looked up.
inspect_lines <- 60L  # lines of a function's source or of str() shown (detail 0)

inspect_lookup <- function(name) {
  parts <- strsplit(name, ":::?")[[1]]
  if (length(parts) == 2) {
    value <- tryCatch(get(parts[2], envir = asNamespace(parts[1]), inherits = FALSE), error = function(e) NULL)
    return(list(found = !is.null(value), value = value, name = parts[2], package = parts[1], user = FALSE))
  }
  if (!exists(name, envir = globalenv())) return(list(found = FALSE, name = name, package = NULL, user = FALSE))
  list(found = TRUE, value = get(name, envir = globalenv()), name = name, package = NULL,
       user = exists(name, envir = globalenv(), inherits = FALSE))
}

inspect_signature <- function(name, value) {
  formals_of <- args(value)
  if (is.null(formals_of)) return(NULL)
  shown <- deparse(formals_of, width.cutoff = 70L)
  shown <- shown[seq_len(max(1L, length(shown) - 1L))]  # args() ends with the body NULL
  shown[1] <- sub("^function ?", name, shown[1])
  paste(trimws(shown, "right"), collapse = "\n")
}

inspect_help <- function(name, package) {
  topic <- if (is.null(package)) utils::help((name)) else utils::help((name), package = (package))
  if (length(topic) == 0) return(NULL)
  rd <- utils:::.getHelpFile(topic[1])
  text <- utils::capture.output(tools::Rd2txt(rd, options = list(underline_titles = FALSE)))
  paste(gsub("_\b", "", text), collapse = "\n")
}

inspect_text <- function(name, detail) {
  found <- inspect_lookup(name)
  # A name of the session is not the package object its help page documents (a data frame `df`).
  help_text <- if (found$user) NULL
               else tryCatch(suppressWarnings(inspect_help(found$name, found$package)), error = function(e) NULL)
  parts <- character(0)
  if (found$found && is.function(found$value)) {
    signature <- tryCatch(inspect_signature(found$name, found$value), error = function(e) NULL)
    if (!is.null(signature)) parts <- c(parts, paste0("Signature: ", signature))
    if (is.null(help_text)) {  # the session's own function: its source
      source_lines <- deparse(found$value)
      shown <- if (detail > 0) source_lines else utils::head(source_lines, inspect_lines)
      parts <- c(parts, paste0("Source:\n", paste0("  ", shown, collapse = "\n"),
                               if (length(shown) < length(source_lines)) "\n  ..." else ""))
    }
  } else if (found$found) {
    structure_lines <- utils::capture.output(utils::str(found$value))
    parts <- c(parts, paste0("Class: ", paste(class(found$value), collapse = ", ")),
               paste(if (detail > 0) structure_lines else utils::head(structure_lines, inspect_lines), collapse = "\n"))
  }
  if (!is.null(help_text)) parts <- c(parts, help_text)
  if (length(parts) == 0) NULL else paste(parts, collapse = "\n\n")
}

inspect <- function(id, text) {
  lines <- strsplit(text, "\n", fixed = TRUE)[[1]]
  name <- trimws(lines[1])
  detail <- suppressWarnings(as.integer(lines[2]))
  shown <- tryCatch(suppressMessages(suppressWarnings(inspect_text(name, if (is.na(detail)) 0L else detail))),
                    error = function(e) NULL)
  if (is.null(shown)) report(list(id = id, status = "ok", found = FALSE))
  else report(list(id = id, status = "ok", found = TRUE, text = shown))
}
