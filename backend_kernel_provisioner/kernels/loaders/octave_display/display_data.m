## -*- texinfo -*-
## @deftypefn {} {} display_data (@var{bundle})
## @deftypefnx {} {} display_data (@var{bundle}, @var{metadata})
## Show one output with several types, @var{bundle} a cell @{mime, text, ...@}, for example
## @code{display_data (@{"text/html", "<b>hi</b>", "text/plain", "hi"@})} (the backend Octave kernel's
## rich output).
## @end deftypefn
function display_data (bundle, varargin)
  if (! iscell (bundle) || mod (numel (bundle), 2) != 0)
    error ("display_data: BUNDLE must be a cell {mime, text, ...}");
  endif
  __backend_display__ (bundle, {}, varargin{:});
endfunction
