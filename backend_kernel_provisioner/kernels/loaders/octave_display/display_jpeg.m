## -*- texinfo -*-
## @deftypefn {} {} display_jpeg (@var{bytes})
## @deftypefnx {} {} display_jpeg (@var{path})
## @deftypefnx {} {} display_jpeg (..., @var{metadata})
## Show an image in the notebook: its bytes (a uint8 vector) or the path of its file (the backend Octave
## kernel's rich output).
## @end deftypefn
function display_jpeg (image, varargin)
  __backend_display_image__ ("display_jpeg", "image/jpeg", image, varargin{:});
endfunction
