## -*- texinfo -*-
## @deftypefn {} {} display_latex (@var{text})
## @deftypefnx {} {} display_latex (@var{text}, @var{metadata})
## Show @var{text} as text/latex in the notebook (the backend Octave kernel's rich output).
## @end deftypefn
function display_latex (text, varargin)
  if (! ischar (text))
    error ("display_latex: TEXT must be a string");
  endif
  __backend_display__ ({"text/latex", text}, {}, varargin{:});
endfunction
