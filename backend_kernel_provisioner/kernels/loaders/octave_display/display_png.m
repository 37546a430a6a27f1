## -*- texinfo -*-
## @deftypefn {} {} display_png (@var{bytes})
## @deftypefnx {} {} display_png (@var{path})
## @deftypefnx {} {} display_png (..., @var{metadata})
## Show an image in the notebook: its bytes (a uint8 vector) or the path of its file (the backend Octave
## kernel's rich output).
## @end deftypefn
function display_png (image, varargin)
  __backend_display_image__ ("display_png", "image/png", image, varargin{:});
endfunction
