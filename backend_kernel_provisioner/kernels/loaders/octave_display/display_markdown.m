## -*- texinfo -*-
## @deftypefn {} {} display_markdown (@var{text})
## @deftypefnx {} {} display_markdown (@var{text}, @var{metadata})
## Show @var{text} as text/markdown in the notebook (the backend Octave kernel's rich output).
## @end deftypefn
function display_markdown (text, varargin)
  if (! ischar (text))
    error ("display_markdown: TEXT must be a string");
  endif
  __backend_display__ ({"text/markdown", text}, {}, varargin{:});
endfunction
