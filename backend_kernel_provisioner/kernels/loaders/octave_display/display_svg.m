## -*- texinfo -*-
## @deftypefn {} {} display_svg (@var{text})
## @deftypefnx {} {} display_svg (@var{text}, @var{metadata})
## Show @var{text} as image/svg+xml in the notebook (the backend Octave kernel's rich output).
## @end deftypefn
function display_svg (text, varargin)
  if (! ischar (text))
    error ("display_svg: TEXT must be a string");
  endif
  __backend_display__ ({"image/svg+xml", text}, {}, varargin{:});
endfunction
