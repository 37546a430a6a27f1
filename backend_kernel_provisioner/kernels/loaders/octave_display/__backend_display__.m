## -*- texinfo -*-
## @deftypefn {} {} __backend_display__ (@var{data}, @var{files}, @var{metadata})
## The Octave session kernel's rich output (display_html and the others call it): one @code{@{"display": ...@}}
## line on the status channel (protocol: backend_kernel_provisioner/kernels/interpreter.py) after flushing
## stdout and stderr, then a wait for the kernel's line on the FIFO display-ack, so the display sits between
## what the cell printed before and after. @var{data} and @var{files} are cells @{mime, value, ...@} (files:
## paths the kernel reads); @var{metadata} a struct (or []).
## @end deftypefn
function __backend_display__ (data, files, metadata)
  if (nargin < 3 || isempty (metadata))
    metadata = "{}";
  else
    metadata = jsonencode (metadata);
  endif
  line = sprintf ('{"display":{"data":%s,"files":%s,"metadata":%s}}', json_object (data), json_object (files),
                  metadata);
  fflush (stdout);
  fflush (stderr);
  folder = getenv ("BACKEND_SESSION_DIR");
  status = fopen (getenv ("BACKEND_SESSION_STATUS"), "w");
  if (status < 0)
    error ("display: no session channel (is this the backend Octave kernel?)");
  endif
  fputs (status, [line "\n"]);
  fclose (status);
  ## Octave's file streams wait for a whole buffer on a FIFO: a shell reads the line.
  ack = strrep (fullfile (folder, "display-ack"), "'", "'\\''");
  builtin ("system", sprintf ("IFS= read -r line < '%s'", ack));
endfunction

function text = json_object (pairs)
  items = cell (1, numel (pairs) / 2);
  for i = 1:2:numel (pairs)
    items{(i + 1) / 2} = sprintf ("%s:%s", jsonencode (pairs{i}), jsonencode (pairs{i + 1}));
  endfor
  text = ["{" strjoin(items, ",") "}"];
endfunction
