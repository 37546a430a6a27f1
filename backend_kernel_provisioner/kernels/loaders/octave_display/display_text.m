## -*- texinfo -*-
## @deftypefn {} {} display_text (@var{text})
## @deftypefnx {} {} display_text (@var{text}, @var{metadata})
## Show @var{text} as text/plain in the notebook (the backend Octave kernel's rich output).
## @end deftypefn
function display_text (text, varargin)
  if (! ischar (text))
    error ("display_text: TEXT must be a string");
  endif
  __backend_display__ ({"text/plain", text}, {}, varargin{:});
endfunction
