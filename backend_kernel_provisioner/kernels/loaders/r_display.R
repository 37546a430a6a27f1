# Rich output of the R session kernel, sourced by r_loader.R into the loader's own environment (it uses
# the loader's encode(), status and folder). Protocol: the {"display": ...} line of
# backend_kernel_provisioner/kernels/interpreter.py, then a line read from the FIFO display-ack. Three parts:
# * display(...) and IRdisplay's display_html(), display_png(), ... for users, attached as
#   "backend:display" so that ls() stays the user's;
# * data frames and matrices shown as an HTML table (beside their printed text), as IRkernel does;
# * figures where they were made: plots go to a null PDF device that keeps a display list; a figure is
#   replayed to PNG and sent before the cell's next top-level expression runs (unless that expression
#   only adds to the plot: lines(), abline(), ...), before a printed value, when a new page starts, when
#   its device is closed and at the cell's end. A figure drawn further after it was sent is sent again
#   as an update of the same display (update_display_data), so it stays where it first appeared.

display_serial <- 0L
figure_state <- list()  # per device of ours (by number): started, id (of the page's display), sent (its display list)
FIGURE_WIDTH <- 640
FIGURE_HEIGHT <- 480
ADDS_TO_PLOT <- c("abline", "lines", "points", "text", "title", "legend", "axis", "box", "grid", "mtext",
                  "polygon", "segments", "arrows", "rect", "symbols", "rug", "matlines", "matpoints",
                  "polypath", "rasterImage", "par", "curve")

send_display <- function(data = list(), files = list(), metadata = list(), display_id = NULL, update = FALSE) {
  message <- list(data = data, files = files, metadata = metadata)
  if (!is.null(display_id)) message$display_id <- display_id
  if (update) message$update <- 1
  flush(stdout())
  flush(stderr())
  writeLines(enc2utf8(encode(list(display = message))), status, useBytes = TRUE)
  flush(status)
  # The kernel's line once it published the display: what the cell prints next comes after it.
  ack <- file(file.path(folder, "display-ack"), open = "r", blocking = TRUE, raw = TRUE)
  on.exit(close(ack))
  readLines(ack, n = 1)
  invisible()
}

staging_file <- function(extension) {
  display_serial <<- display_serial + 1L
  file.path(folder, sprintf("display-%d.%s", display_serial, extension))
}

# An image is a raw vector (its bytes) or the path of its file.
image_file <- function(value, extension) {
  if (is.raw(value)) {
    path <- staging_file(extension)
    writeBin(value, path)
    return(path)
  }
  if (is.character(value) && length(value) == 1 && file.exists(value)) return(normalizePath(value))
  stop(sprintf("display(%s = ): give the image's bytes (a raw vector) or the path of an existing file", extension),
       call. = FALSE)
}

text_of <- function(value) paste(as.character(value), collapse = "\n")

printed <- function(value) paste(utils::capture.output(print(value)), collapse = "\n")

# -- tables ---------------------------------------------------------------------------------------------
escape_html <- function(s) {
  s <- gsub("&", "&amp;", s, fixed = TRUE)
  s <- gsub("<", "&lt;", s, fixed = TRUE)
  gsub(">", "&gt;", s, fixed = TRUE)
}

is_table <- function(value) {
  is.data.frame(value) || (is.matrix(value) && length(dim(value)) == 2 && (is.atomic(value)))
}

column_type <- function(column) {
  if (is.factor(column)) return("fct")
  if (inherits(column, "Date")) return("date")
  if (inherits(column, "POSIXt")) return("dttm")
  if (is.list(column)) return("list")
  switch(typeof(column), integer = "int", double = "dbl", character = "chr", logical = "lgl", complex = "cpl",
         class(column)[1])
}

# First and last indices when there are more than `limit` (an ellipsis goes between them).
shown_part <- function(n, limit) {
  if (n <= limit) return(list(head = seq_len(n), tail = integer(0)))
  list(head = seq_len(ceiling(limit / 2)), tail = seq.int(n - floor(limit / 2) + 1, n))
}

html_table <- function(x) {
  frame <- is.data.frame(x)
  kind <- class(x)[1]
  if (frame) x <- as.data.frame(x)  # a tibble or a data.table indexes and formats as a data frame then
  rows <- shown_part(nrow(x), getOption("backend.table.max.rows", 60))
  cols <- shown_part(ncol(x), getOption("backend.table.max.cols", 20))
  part <- x[c(rows$head, rows$tail), c(cols$head, cols$tail), drop = FALSE]
  cells <- if (frame) as.matrix(format(part)) else format(part)
  cells <- matrix(escape_html(trimws(cells)), nrow = nrow(part))
  cells[is.na(cells)] <- "NA"
  row_names <- rownames(part)
  if (is.null(row_names)) row_names <- sprintf("[%d,]", c(rows$head, rows$tail))
  col_names <- colnames(part)
  if (is.null(col_names)) col_names <- sprintf("[,%d]", c(cols$head, cols$tail))
  split_cols <- function(items, gap) {
    if (length(cols$tail) == 0) return(items)
    c(items[seq_along(cols$head)], gap, items[length(cols$head) + seq_along(cols$tail)])
  }
  header <- paste0("<tr><th></th>", paste0(split_cols(sprintf("<th scope=col>%s</th>", escape_html(col_names)),
                                                      "<th scope=col>\u22ef</th>"), collapse = ""), "</tr>")
  if (frame) {
    types <- vapply(part, column_type, "")
    header <- c(header, paste0("<tr><th></th>", paste0(split_cols(
      sprintf("<th scope=col>&lt;%s&gt;</th>", escape_html(types)), "<th scope=col></th>"), collapse = ""), "</tr>"))
  }
  body <- vapply(seq_len(nrow(part)), function(i) {
    paste0("<tr><th scope=row>", escape_html(row_names[i]), "</th>",
           paste0(split_cols(sprintf("<td>%s</td>", cells[i, ]), "<td>\u22ef</td>"), collapse = ""), "</tr>")
  }, "")
  if (length(rows$tail)) {
    gap <- paste0("<tr><th scope=row>\u22ee</th>",
                  paste0(rep("<td>\u22ee</td>", ncol(part) + (length(cols$tail) > 0)), collapse = ""), "</tr>")
    body <- c(body[seq_along(rows$head)], gap, body[length(rows$head) + seq_along(rows$tail)])
  }
  caption <- if (frame) sprintf("A %s: %d \u00d7 %d", kind, nrow(x), ncol(x))
             else sprintf("A matrix: %d \u00d7 %d of type %s", nrow(x), ncol(x), column_type(x))
  caption <- sprintf("<caption>%s</caption>", escape_html(caption))
  paste(c("<table class=\"dataframe\">", caption, "<thead>", header, "</thead>", "<tbody>", body, "</tbody>",
          "</table>"), collapse = "\n")
}

# The MIME types of a value besides its printed text (text/html for a data frame or a matrix).
rich_types <- function(value) {
  if (!is_table(value) || nrow(value) == 0 || ncol(value) == 0) return(list())
  tryCatch(list("text/html" = html_table(value)), error = function(e) list())
}

# A visible value of a cell's expression that is not its last one: a table as a display, others printed.
show_value <- function(value) {
  send_figures()
  rich <- rich_types(value)
  if (length(rich)) {
    rich[["text/plain"]] <- printed(value)
    send_display(rich)
  } else {
    print(value)
  }
}

# -- display() for users -------------------------------------------------------------------------------
display <- function(obj, html = NULL, markdown = NULL, latex = NULL, svg = NULL, png = NULL, jpeg = NULL,
                    json = NULL, javascript = NULL, text = NULL, metadata = NULL) {
  data <- list()
  files <- list()
  if (!missing(obj)) {
    data <- rich_types(obj)
    data[["text/plain"]] <- printed(obj)
  }
  if (!is.null(html)) data[["text/html"]] <- text_of(html)
  if (!is.null(markdown)) data[["text/markdown"]] <- text_of(markdown)
  if (!is.null(latex)) data[["text/latex"]] <- text_of(latex)
  if (!is.null(javascript)) data[["application/javascript"]] <- text_of(javascript)
  if (!is.null(svg)) {
    is_path <- length(svg) == 1 && !grepl("<", svg, fixed = TRUE) && file.exists(svg)
    data[["image/svg+xml"]] <- if (is_path) text_of(readLines(svg, warn = FALSE)) else text_of(svg)
  }
  if (!is.null(json)) data[["application/json"]] <- if (is.character(json)) text_of(json) else encode(json)
  if (!is.null(text)) data[["text/plain"]] <- text_of(text)
  if (!is.null(png)) files[["image/png"]] <- image_file(png, "png")
  if (!is.null(jpeg)) files[["image/jpeg"]] <- image_file(jpeg, "jpeg")
  if (length(data) == 0 && length(files) == 0) stop("display(): nothing to display", call. = FALSE)
  send_figures()  # a figure drawn before comes first
  send_display(data, files, if (is.null(metadata)) list() else metadata)
}

user_api <- new.env()
user_api$display <- display
for (kind in c("html", "markdown", "latex", "svg", "json", "javascript")) {
  local({
    argument <- kind
    assign(paste0("display_", kind), function(data, metadata = NULL) {
      arguments <- list(data, metadata = metadata)
      names(arguments)[1] <- argument
      do.call(display, arguments)
    }, envir = user_api)
  })
}
for (kind in c("png", "jpeg")) {
  local({
    argument <- kind
    assign(paste0("display_", kind), function(data = NULL, file = NULL, metadata = NULL) {
      arguments <- list(if (is.null(file)) data else file, metadata = metadata)
      names(arguments)[1] <- argument
      do.call(display, arguments)
    }, envir = user_api)
  })
}
attach(user_api, name = "backend:display", warn.conflicts = FALSE)

# -- figures ---------------------------------------------------------------------------------------------
options(device = function(...) {
  grDevices::pdf(NULL, width = FIGURE_WIDTH / 72, height = FIGURE_HEIGHT / 72)
  grDevices::dev.control(displaylist = "enable")
  figure_state[[as.character(grDevices::dev.cur())]] <<- list(started = FALSE, id = NULL, sent = NULL)
})

switch_device <- function(device) {
  if (device %in% grDevices::dev.list()) invisible(grDevices::dev.set(device))
}

replaying <- FALSE  # while a figure is replayed to PNG (replaying grid runs the page hooks again)

send_figure <- function(device) {
  key <- as.character(device)
  state <- figure_state[[key]]
  if (replaying || is.null(state) || !state$started) return(invisible())
  current <- grDevices::dev.cur()
  switch_device(device)
  replaying <<- TRUE
  on.exit({
    replaying <<- FALSE
    switch_device(current)
  })
  plot <- tryCatch(grDevices::recordPlot(), error = function(e) NULL)
  if (is.null(plot) || length(plot[[1]]) == 0 || identical(plot[[1]], state$sent)) return(invisible())
  path <- staging_file("png")
  grDevices::png(path, width = FIGURE_WIDTH, height = FIGURE_HEIGHT)
  replayed <- tryCatch({
    grDevices::replayPlot(plot)
    TRUE
  }, error = function(e) {
    message("[the figure could not be drawn: ", conditionMessage(e), "]")
    FALSE
  }, finally = real_dev_off())
  switch_device(device)
  if (!replayed || !file.exists(path)) {  # nothing drawn yet (a page just started)
    unlink(path)
    return(invisible())
  }
  update <- !is.null(state$id)
  if (!update) state$id <- sprintf("r-figure-%d-%d", Sys.getpid(), (display_serial <<- display_serial + 1L))
  state$sent <- plot[[1]]
  figure_state[[key]] <<- state
  send_display(list("text/plain" = "plot without title"), list("image/png" = path), display_id = state$id,
               update = update)
}

send_figures <- function() {
  for (key in names(figure_state)) send_figure(as.integer(key))
}

# A new page: the page before it is sent first (base graphics start a page only when par("page") says
# so: the next panel of par(mfrow = ...) is on the same page). A device of ours has a figure once a page
# was started on it (not when only par() opened it).
page_ends <- function() {
  key <- as.character(grDevices::dev.cur())
  if (replaying || is.null(figure_state[[key]])) return(invisible())
  send_figure(as.integer(key))
  figure_state[[key]] <<- list(started = FALSE, id = NULL, sent = NULL)
}
page_started <- function() {
  key <- as.character(grDevices::dev.cur())
  if (!replaying && !is.null(figure_state[[key]])) figure_state[[key]]$started <<- TRUE
}

quietly <- function(f) function() tryCatch(f(), error = function(e) NULL)
setHook("before.plot.new", quietly(function() if (isTRUE(graphics::par("page"))) page_ends()))
setHook("plot.new", quietly(page_started))
setHook("before.grid.newpage", quietly(page_ends))
setHook("grid.newpage", quietly(page_started))

# Before a top-level expression of a cell: the figures so far, unless the expression only adds to them.
before_expression <- function(expression) {
  if (length(figure_state) == 0) return(invisible())
  head <- if (is.call(expression)) expression[[1]] else NULL
  if (is.call(head) && identical(head[[1]], as.name("::"))) head <- head[[3]]
  if (is.name(head) && as.character(head) %in% ADDS_TO_PLOT) return(invisible())
  send_figures()
}

# dev.off() and graphics.off() send the figure of a device of ours before closing it.
real_dev_off <- grDevices::dev.off
replace_in_grdevices <- function(name, value) {
  for (where in list(asNamespace("grDevices"), as.environment("package:grDevices"))) {
    unlockBinding(name, where)
    assign(name, value, envir = where)
    lockBinding(name, where)
  }
}
replace_in_grdevices("dev.off", function(which = grDevices::dev.cur()) {
  key <- as.character(which)
  if (!is.null(figure_state[[key]])) {
    tryCatch(send_figure(which), error = function(e) NULL)
    figure_state[[key]] <<- NULL
  }
  real_dev_off(which)
})

# The cell's end: its figures are sent, then every device is closed (a file device the cell left open
# writes its file), so the next cell starts a new figure.
finish_figures <- function() {
  tryCatch(send_figures(), error = function(e) NULL)
  while (grDevices::dev.cur() > 1) grDevices::dev.off()
  figure_state <<- list()
}
