## Loader of the Octave session kernel (protocol: backend_kernel_provisioner/kernels/session.py).
## Started as `octave-cli --eval "octave_loader()"`: cells are evaluated in the base workspace,
## so variables and command-line functions last; the loader's own variables stay in its frames.
## Octave cannot catch an interrupt (Ctrl-C unwinds to the top level, which would end --eval), but
## it runs unwind_protect cleanups on the way: the cleanup answers the cell and keeps serving.
## system() ignores SIGINT while its command runs (as libc's does), so an interrupt would be lost:
## the kernel also names the interrupted request in the session's `interrupt` flag file, and the
## loader's `system` (which every caller gets, unix() included) raises Octave's own interrupt when
## the command returns and the flag names the running cell.
## Open figures are printed to PNG after each cell, sent as displays and closed; display_html and the
## others (octave_display/) send rich output. A cell whose last line is a bare expression comes split
## before that line (backend_kernel_provisioner/kernels/octave_value.py): its value is the cell's result.
function octave_loader ()
  crash_dumps_octave_core (false);
  sigterm_dumps_octave_core (false);
  sighup_dumps_octave_core (false);
  warning ("off", "Octave:gnuplot-graphics");
  more off;
  page_screen_output (false);
  max_recursion_depth (10000);
  set (0, "defaultfigurevisible", "off");
  channel.folder = getenv ("BACKEND_SESSION_DIR");
  ## Octave's file streams fill a whole buffer (fread) before fgetl returns, which never happens on
  ## a FIFO with one short request: each request line is read by a shell's byte-wise `read`.
  channel.read_request = sprintf ("IFS= read -r line < '%s' && printf '%%s' \"$line\"",
                                  strrep (getenv ("BACKEND_SESSION_CELLS"), "'", "'\\''"));
  channel.status = fopen (getenv ("BACKEND_SESSION_STATUS"), "w");
  channel.figures = 0;
  add_checked_calls (channel.folder);
  addpath (fullfile (fileparts (mfilename ("fullpath")), "octave_display"));
  report (channel, struct ("status", "ready"));
  serve (channel);
endfunction

function serve (channel)
  while (true)
    [failed, line] = builtin ("system", channel.read_request);  # never the checking one
    if (failed)
      exit (0);
    endif
    parts = regexp (line, '^(\d+) (\w+) (.*)$', "tokens", "once");
    if (numel (parts) != 3)
      continue;
    endif
    if (strcmp (parts{2}, "exit"))  # the kernel's shutdown: end as a script's end would
      exit (0);
    endif
    id = str2double (parts{1});
    text = fileread (parts{3});
    if (strcmp (parts{2}, "complete"))
      report (channel, complete_answer (id, text));
      continue;
    endif
    if (strcmp (parts{2}, "is_complete"))  # does the text end early? (octave_is_complete.m)
      report (channel, struct ("id", id, "status", "ok", "complete", octave_is_complete (text, channel.folder)));
      continue;
    endif
    if (strcmp (parts{2}, "inspect"))  # help, source or value for Shift-Tab (octave_inspect.m)
      report (channel, octave_inspect (id, text));
      continue;
    endif
    finished = false;
    setenv ("BACKEND_SESSION_REQUEST", parts{1});  # the id a flag must name to interrupt this cell
    unwind_protect
      answer = run_cell (id, text);
      finished = true;
    unwind_protect_cleanup
      channel.figures = save_figures (channel);
      if (! finished)  # interrupted: answer, then keep serving from here
        report (channel, struct ("id", id, "status", "error", "ename", "KeyboardInterrupt",
                                 "evalue", "interrupted", "exit_code", 130));
        serve (channel);
      endif
    end_unwind_protect
    report (channel, answer);
  endwhile
endfunction

function answer = run_cell (id, text)
  try
    split = strfind (text, "\n\x1e\n");
    if (strncmp (text, "\x1e\n", 2))
      split = -1;  # nothing before the expression
    endif
    if (isempty (split))
      evalin ("base", text);
      answer = struct ("id", id, "status", "ok");
    else
      split = split(end);
      if (split > 0)
        evalin ("base", text(1:split - 1));
      endif
      shown = value_of (strtrim (text(max (split, 0) + 3:end)));
      answer = struct ("id", id, "status", "ok");
      if (! isempty (shown))
        answer.result = shown;
      endif
    endif
  catch err
    if (strcmp (err.identifier, "backend:interrupt"))  # the signal did not arrive in time
      answer = struct ("id", id, "status", "error", "ename", "KeyboardInterrupt",
                       "evalue", "interrupted", "exit_code", 130);
      return;
    endif
    message = err.message;
    answer = struct ("id", id, "status", "error", "ename", "error", "evalue", message, "exit_code", 1);
    answer.traceback = {["error: " message]};
    if (! isempty (err.identifier))
      answer.ename = err.identifier;
    endif
  end_try_catch
endfunction

## The checking `system` is a function file in a folder of the session put first on the path, so
## it shadows the built-in for every caller and outlives `clear all` (which drops command-line
## functions). The check raises SIGINT, which no try/catch catches, as Ctrl-C would; Octave acts on
## it in pause(), a few milliseconds later (its handler only marks it); an error is the fallback.
function add_checked_calls (folder)
  folder = fullfile (folder, "octave-path");
  mkdir (folder);
  write_function (folder, "system", {
    "function varargout = system (varargin)"
    "  [varargout{1:max(nargout, 1)}] = builtin ('system', varargin{:});"
    "  __backend_interrupt_check__ ();"
    "endfunction"});
  write_function (folder, "__backend_interrupt_check__", {
    "function __backend_interrupt_check__ ()"
    "  flag = fullfile (getenv ('BACKEND_SESSION_DIR'), 'interrupt');"
    "  [~, missing] = stat (flag);"
    "  if (missing)"
    "    return;"
    "  endif"
    "  try"
    "    named = strtrim (fileread (flag));"
    "  catch"
    "    return;"
    "  end_try_catch"
    "  if (strcmp (named, getenv ('BACKEND_SESSION_REQUEST')))"
    "    unlink (flag);"
    "    kill (getpid (), SIG ().INT);"
    "    for i = 1:2000"
    "      pause (0.001);"
    "    endfor"
    "    error ('backend:interrupt', 'interrupted');"
    "  endif"
    "endfunction"});
  shadowing = warning ("query", "Octave:shadowed-function");
  warning ("off", "Octave:shadowed-function");
  addpath (folder);
  warning (shadowing.state, "Octave:shadowed-function");
endfunction

function write_function (folder, name, lines)
  file = fopen (fullfile (folder, [name ".m"]), "w");
  fputs (file, sprintf ("%s\n", lines{:}));
  fclose (file);
endfunction

## What Octave would print for a bare expression, as the cell's result: a variable's display (`x = 1`), or
## `ans = ...` when the expression (run with `;`) set ans; "" when it gives no value (disp, plot). The
## user's ans is kept when the expression does not set it.
function shown = value_of (expression)
  shown = "";
  if (! isempty (regexp (expression, '^[A-Za-z]\w*$', "once")) && base_has (expression))
    shown = evalc (sprintf ("evalin ('base', '%s')", expression));
  else
    had_ans = base_has ("ans");
    if (had_ans)
      previous = evalin ("base", "ans");  # a variable's name: evaluating it does not set ans
      evalin ("base", "clear ans");
    endif
    unwind_protect
      evalin ("base", [expression ";"]);
      if (base_has ("ans"))
        shown = evalc ("evalin ('base', 'ans')");
      endif
    unwind_protect_cleanup
      if (had_ans && ! base_has ("ans"))
        assignin ("base", "ans", previous);
      endif
    end_unwind_protect
  endif
  shown = regexprep (shown, '\s+$', '');
endfunction

## Whether the base workspace has the variable (an expression evalin'd there would set ans: an assignment).
function found = base_has (name)
  evalin ("base", sprintf ("__backend_found__ = exist ('%s', 'var') == 1;", name));
  found = evalin ("base", "__backend_found__");
  evalin ("base", "clear __backend_found__");
endfunction

function count = save_figures (channel)
  count = channel.figures;
  handles = get (0, "children");
  for h = sort (handles(:))'
    count += 1;
    try
      path = fullfile (channel.folder, sprintf ("display-figure-%d.png", count));
      print (h, path, "-dpng");
      __backend_display__ ({"text/plain", sprintf("<Figure %d>", count)}, {"image/png", path});
    catch err
      fprintf (stderr, "[the figure could not be sent: %s]\n", err.message);
    end_try_catch
    close (h);
  endfor
endfunction

function answer = complete_answer (id, text)
  token = regexp (text, '[A-Za-z_][A-Za-z0-9_]*$', "match", "once");
  matches = {};
  if (! isempty (token))
    found = completion_matches (token);
    matches = unique (cellstr (found))';
    matches = matches(! cellfun ("isempty", matches));
  endif
  answer = struct ("id", id, "status", "ok", "token", token);
  answer.matches = matches;
endfunction

function report (channel, answer)
  fflush (stdout);
  fflush (stderr);
  if (isfield (answer, "matches") && numel (answer.matches) < 2)
    text = jsonencode (rmfield (answer, "matches"));  # a 0/1-element cell would not be a JSON list
    items = sprintf (",%s", cellfun (@jsonencode, answer.matches, "UniformOutput", false){:});
    text = [text(1:end-1) ',"matches":[' items(2:end) "]}"];
  else
    text = jsonencode (answer);
  endif
  fputs (channel.status, [text "\n"]);
  fflush (channel.status);
endfunction
