# Loader of the R session kernel (protocol: backend_kernel_provisioner/kernels/session.py).
# R runs with --interactive and this file as its user profile (R_PROFILE_USER), so the console,
# readline() (replaced below) and readLines("stdin") read the user's standard input while cells come from the
# FIFO. Each cell is parsed and evaluated in the global environment; errors and interrupts are
# caught per cell, so the state lasts. Everything of the loader lives in a local environment.
local({
  for (package in c("methods", "datasets", "utils", "grDevices", "graphics", "stats")) {
    suppressPackageStartupMessages(library(package, character.only = TRUE))
  }
  options(warn = 1)
  folder <- Sys.getenv("BACKEND_SESSION_DIR")
  cells <- file(Sys.getenv("BACKEND_SESSION_CELLS"), open = "r", blocking = TRUE, raw = TRUE)
  status <- file(Sys.getenv("BACKEND_SESSION_STATUS"), open = "w", blocking = TRUE, raw = TRUE)
  flag <- file.path(folder, "interrupt")
  current_id <- 0L

  # Interrupts. R acts on SIGINT only at its next interrupt check (not inside a blocked read), and
  # system() ignores it while the command runs; so the kernel also writes the request's id to the
  # flag file, and the loader checks both right after each blocking call it wraps and at the end
  # of the cell. The condition raised is the one R's own Ctrl-C raises.
  check_interrupt <- function() {
    Sys.sleep(0)  # a pending SIGINT fires here
    if (file.exists(flag)) {
      named <- tryCatch(readLines(flag, warn = FALSE), error = function(e) character(0))
      if (identical(named, as.character(current_id))) {
        unlink(flag)
        signalCondition(structure(class = c("interrupt", "condition"), list(message = "interrupted", call = NULL)))
      }
    }
  }
  interrupted_answer <- function(id) {
    list(id = id, status = "error", ename = "KeyboardInterrupt", evalue = "interrupted", exit_code = 130)
  }
  replace_in_base <- function(name, value) {
    for (where in list(baseenv(), .BaseNamespaceEnv)) {
      unlockBinding(name, where)
      assign(name, value, envir = where)
      lockBinding(name, where)
    }
  }
  checking_after <- function(original) {
    force(original)
    function(...) {
      shown <- withVisible(original(...))
      check_interrupt()
      if (shown$visible) shown$value else invisible(shown$value)
    }
  }
  for (name in c("system", "system2")) replace_in_base(name, checking_after(get(name, envir = baseenv())))

  # readline() waits in select() on R's console, which the kernel cannot see as a read of stdin;
  # this one reads the line from stdin directly (a plain read the kernel answers by input_request).
  user_stdin <- file("stdin")
  open(user_stdin, "r")
  readline <- function(prompt = "") {
    cat(prompt)
    flush(stdout())
    line <- readLines(user_stdin, n = 1, warn = FALSE)
    check_interrupt()  # the kernel wakes an interrupted read with an empty line
    if (length(line) == 0) "" else line
  }
  replace_in_base("readline", readline)

  quote_json <- function(s) {
    s <- enc2utf8(as.character(s))
    s <- gsub("\\", "\\\\", s, fixed = TRUE)
    s <- gsub("\"", "\\\"", s, fixed = TRUE)
    s <- gsub("\n", "\\n", s, fixed = TRUE)
    s <- gsub("\r", "\\r", s, fixed = TRUE)
    s <- gsub("\t", "\\t", s, fixed = TRUE)
    s <- gsub("[[:cntrl:]]", "?", s)
    paste0("\"", s, "\"")
  }

  encode <- function(value) {
    if (is.list(value)) {
      parts <- vapply(names(value), function(key) paste0(quote_json(key), ":", encode(value[[key]])), "")
      return(paste0("{", paste(parts, collapse = ","), "}"))
    }
    if (is.logical(value) && length(value) == 1 && !is.na(value)) return(if (value) "true" else "false")
    if (is.numeric(value) && length(value) == 1) return(format(value))
    if (inherits(value, "AsIs")) {
      return(paste0("[", paste(vapply(as.character(value), quote_json, ""), collapse = ","), "]"))
    }
    quote_json(paste(value, collapse = "\n"))
  }

  report <- function(answer) {
    flush(stdout())
    flush(stderr())
    writeLines(encode(answer), status)
    flush(status)
  }

  # display(), data frames as HTML tables, figures in order with the cell's text (r_display.R).
  source(file.path(dirname(Sys.getenv("R_PROFILE_USER")), "r_display.R"), local = environment())
  # inspect(): help pages, signatures and values for Shift-Tab (r_inspect.R).
  source(file.path(dirname(Sys.getenv("R_PROFILE_USER")), "r_inspect.R"), local = environment())
  # is_complete_status(): does the text end early? (r_is_complete.R)
  source(file.path(dirname(Sys.getenv("R_PROFILE_USER")), "r_is_complete.R"), local = environment())
  # The loader is this R's profile only: an R the cell starts (system("Rscript ...")) must not load it too.
  Sys.unsetenv("R_PROFILE_USER")

  error_answer <- function(id, e) {
    call <- conditionCall(e)
    if (is.call(call) && identical(call[[1]], as.name("eval")) && identical(call[[2]], quote(expressions[[i]]))) {
      call <- NULL  # an error at the cell's top level, not inside a function
    }
    message <- conditionMessage(e)
    shown <- if (is.null(call)) paste0("Error: ", message)
             else paste0("Error in ", paste(deparse(call, nlines = 1), collapse = ""), ": ", message)
    list(id = id, status = "error", ename = "Error", evalue = message, exit_code = 1,
         traceback = I(strsplit(shown, "\n", fixed = TRUE)[[1]]))
  }

  close_figures <- function() finish_figures()

  run <- function(id, text) {
    current_id <<- id
    tryCatch(Sys.sleep(0), interrupt = function(e) NULL)  # a late SIGINT meant for the previous cell
    answer <- tryCatch({
      expressions <- tryCatch(parse(text = text, keep.source = FALSE), error = function(e) {
        structure(list(message = sub("^<text>:", "line ", conditionMessage(e))), class = "parse_failure")
      })
      if (inherits(expressions, "parse_failure")) {
        list(id = id, status = "error", ename = "SyntaxError", evalue = expressions$message, exit_code = 1,
             traceback = I(c("Error: parse error", strsplit(expressions$message, "\n", fixed = TRUE)[[1]])))
      } else {
        result <- NULL
        for (i in seq_along(expressions)) {
          before_expression(expressions[[i]])
          shown <- withVisible(eval(expressions[[i]], envir = globalenv()))
          if (shown$visible) {
            if (i == length(expressions)) {
              result <- paste(utils::capture.output(print(shown$value)), collapse = "\n")
              rich <- rich_types(shown$value)
            } else {
              show_value(shown$value)
            }
          }
        }
        check_interrupt()  # an interrupt R has not acted on yet still ends the cell as interrupted
        if (is.null(result)) list(id = id, status = "ok")
        else list(id = id, status = "ok", result = result, data = rich)
      }
    }, interrupt = function(e) interrupted_answer(id), error = function(e) error_answer(id, e))
    suspendInterrupts({
      tryCatch(close_figures(), error = function(e) NULL)
      report(answer)
    })
  }

  complete <- function(id, text) {
    completion <- tryCatch({
      utils:::.assignLinebuffer(text)
      utils:::.assignEnd(nchar(text))
      token <- utils:::.guessTokenFromLine()
      utils:::.completeToken()
      list(matches = utils:::.retrieveCompletions(), token = token)
    }, error = function(e) list(matches = character(0), token = ""))
    report(list(id = id, status = "ok", matches = I(completion$matches), token = completion$token))
  }

  # One request; an interrupt escaping it (between a cell's handlers) still gets its answer, so the
  # loop (and the session) never ends on an interrupt.
  serve <- function(line) {
    parts <- regmatches(line, regexec("^([0-9]+) ([a-z_]+) (.*)$", line))[[1]]
    if (length(parts) != 4) return(invisible())
    id <- as.integer(parts[2])
    tryCatch({
      text <- paste(readLines(parts[4], warn = FALSE, encoding = "UTF-8"), collapse = "\n")
      if (parts[3] == "run") run(id, text) else if (parts[3] == "complete") complete(id, text)
      else if (parts[3] == "inspect") inspect(id, text)
      else if (parts[3] == "is_complete") report(list(id = id, status = "ok", complete = is_complete_status(text)))
    }, interrupt = function(e) suspendInterrupts(report(interrupted_answer(id))))
  }

  report(list(status = "ready"))
  repeat {
    # End of the cells channel (the kernel's shutdown) ends the loop, so R exits cleanly (.Last, finalizers).
    line <- tryCatch(readLines(cells, n = 1), interrupt = function(e) "", error = function(e) NULL)
    if (is.null(line) || length(line) == 0) break
    tryCatch(serve(line), interrupt = function(e) NULL)
  }
  quit(save = "no", status = 0)
})
