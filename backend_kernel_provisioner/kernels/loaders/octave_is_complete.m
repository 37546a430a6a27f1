## is_complete for the Octave session kernel (called by octave_loader.m for an `is_complete` request):
## Octave's own parser reads the text as a script file (__parse_file__ parses without running). A parse
## error after the text's last line means it ends early (a `for` without its `end`, an open bracket or
## continuation); one inside it means it is invalid. A probe function after the text turns a `function`
## left without its `end` into such an error too (alone in a file it would be complete, but at Octave's
## prompt it waits for its `end`). A block comment left open is only a warning: it is counted here.
function status = octave_is_complete (text, folder)
  if (numel (regexp (text, '^\s*[%#]\{\s*$', "lineanchors")) > numel (regexp (text, '^\s*[%#]\}\s*$', "lineanchors")))
    status = "incomplete";
    return;
  endif
  last_line = 1 + numel (strfind ([text "\n"], "\n"));  # the file's first line is "1;"
  file = [tempname(folder, "is_complete_") ".m"];
  fid = fopen (file, "w");
  fputs (fid, ["1;\n" text "\nfunction __backend_probe__ ()\nend\n"]);
  fclose (fid);
  warnings = warning ();
  warning ("off", "all");
  try
    __parse_file__ (file);
    status = "complete";
  catch err
    at = str2double (regexp (err.message, 'near line (\d+)', "tokens", "once"));
    if (! isempty (at) && ! isnan (at) && at > last_line)
      status = "incomplete";
    else
      status = "invalid";
    endif
  end_try_catch
  warning (warnings);
  unlink (file);
endfunction
