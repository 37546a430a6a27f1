## -*- texinfo -*-
## @deftypefn {} {} display_html (@var{text})
## @deftypefnx {} {} display_html (@var{text}, @var{metadata})
## Show @var{text} as text/html in the notebook (the backend Octave kernel's rich output).
## @end deftypefn
function display_html (text, varargin)
  if (! ischar (text))
    error ("display_html: TEXT must be a string");
  endif
  __backend_display__ ({"text/html", text}, {}, varargin{:});
endfunction
