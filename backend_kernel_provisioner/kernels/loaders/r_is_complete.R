# is_complete for the R session kernel (sourced by r_loader.R, which answers an `is_complete` request
# with the verdict): R's parser says whether the text ends early, as R's console does when it shows its
# "+" prompt. parse() runs nothing; an open input fails with "unexpected end of input" (in the session's
# language: gettext gives the translation) or an INCOMPLETE_STRING.
is_complete_status <- function(text) {
  failure <- tryCatch({
    parse(text = text, keep.source = FALSE)
    NULL
  }, error = function(e) conditionMessage(e))
  if (is.null(failure)) return("complete")
  open_input <- c("unexpected end of input", gettext("unexpected end of input", domain = "R"), "INCOMPLETE_STRING")
  if (any(vapply(open_input, function(m) grepl(m, failure, fixed = TRUE), TRUE))) "incomplete" else "invalid"
}
