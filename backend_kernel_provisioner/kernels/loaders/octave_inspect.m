## Inspect (Shift-Tab) for the Octave session kernel (called by octave_loader.m for an `inspect`
## request; the file's text holds the name and the detail level, one a line): Octave's own `help`
## text for functions, built-ins and keywords, the source (`type`) of command-line functions, and
## the class, size and value of variables of the base workspace. Returns the loader's answer.
function answer = octave_inspect (id, text)
  lines = strsplit (text, "\n");
  name = strtrim (lines{1});
  detail = 0;
  if (numel (lines) > 1 && ! isnan (str2double (lines{2})))
    detail = str2double (lines{2});
  endif
  shown = "";
  try
    shown = describe (name, detail);
  catch
    shown = "";
  end_try_catch
  answer = struct ("id", id, "status", "ok", "found", ! isempty (shown), "text", shown);
endfunction

function shown = describe (name, detail)
  shown = "";
  if (isempty (regexp (name, '^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$', "once")))
    return;
  endif
  parts = strsplit (name, ".");
  kind = evalin ("base", sprintf ("exist ('%s')", parts{1}));
  if (kind == 1)  # a variable of the base workspace (a field path of a struct)
    value = evalin ("base", parts{1});
    for i = 2:numel (parts)
      value = value.(parts{i});
    endfor
    shown_value = evalc ("disp (value)");
    limit = 2000 * (1 + 9 * (detail > 0));
    if (numel (shown_value) > limit)
      shown_value = [shown_value(1:limit) "..."];
    endif
    shown = sprintf ("Variable:  %s\nClass:     %s\nSize:      %s\nValue:\n%s", name, class (value),
                     regexprep (mat2str (size (value)), '[\[\]]', ''), shown_value);
    return;
  endif
  pieces = {};
  try
    text = evalc (sprintf ("help ('%s')", name));
    footer = strfind (text, "Additional help for built-in functions");
    if (! isempty (footer))
      text = text(1:footer(1) - 1);
    endif
    pieces{end + 1} = strtrim (text);
  catch
  end_try_catch
  if (kind == 103)  # a command-line function: its source
    try
      pieces{end + 1} = strtrim (evalc (sprintf ("type ('%s')", name)));
    catch
    end_try_catch
  endif
  pieces = pieces(! cellfun ("isempty", pieces));
  if (! isempty (pieces))
    shown = strjoin (pieces, "\n\n");
  endif
endfunction
