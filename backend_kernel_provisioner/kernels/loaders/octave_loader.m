## Loader of the Octave session kernel (protocol: backend_kernel_provisioner/kernels/session.py).
## Started as `octave-cli --eval "octave_loader()"`: cells are evaluated in the base workspace,
## so variables and command-line functions last; the loader's own variables stay in its frames.
## Octave cannot catch an interrupt (Ctrl-C unwinds to the top level, which would end --eval), but
## it runs unwind_protect cleanups on the way: the cleanup answers the cell and keeps serving.
## system() ignores SIGINT while its command runs (as libc's does), so an interrupt would be lost:
## the kernel also names the interrupted request in the session's `interrupt` flag file, and the
## loader's `system` (which every caller gets, unix() included) raises Octave's own interrupt when
## the command returns and the flag names the running cell.
## Open figures are printed to figure-*.png in the session folder after each cell and closed.
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
    evalin ("base", text);
    answer = struct ("id", id, "status", "ok");
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

function count = save_figures (channel)
  count = channel.figures;
  handles = get (0, "children");
  for h = sort (handles(:))'
    count += 1;
    try
      print (h, fullfile (channel.folder, sprintf ("figure-%06d.png", count)), "-dpng");
    catch err
      fprintf (stderr, "[the figure could not be saved: %s]\n", err.message);
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
