## -*- texinfo -*-
## @deftypefn {} {} display_json (@var{value})
## @deftypefnx {} {} display_json (@var{value}, @var{metadata})
## Show @var{value} (JSON text, or a value @code{jsonencode} takes) as JSON in the notebook (the backend
## Octave kernel's rich output).
## @end deftypefn
function display_json (value, varargin)
  if (! ischar (value))
    value = jsonencode (value);
  endif
  __backend_display__ ({"application/json", value}, {}, varargin{:});
endfunction
