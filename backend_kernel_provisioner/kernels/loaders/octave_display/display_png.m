## -*- texinfo -*-
## @deftypefn {} {} display_png (@var{bytes})
## @deftypefnx {} {} display_png (@var{path})
## @deftypefnx {} {} display_png (..., @var{metadata})
## Show an image in the notebook: its bytes (a uint8 vector) or the path of its file (the backend Octave
## kernel's rich output).
## @end deftypefn
function display_png (image, varargin)
  if (isa (image, "uint8"))
    path = [tempname(getenv ("BACKEND_SESSION_DIR"), "display-") ".png"];
    file = fopen (path, "w");
    fwrite (file, image, "uint8");
    fclose (file);
  elseif (ischar (image) && exist (image, "file"))
    path = make_absolute_filename (image);
  else
    error ("display_png: give the image's bytes (uint8) or the path of an existing file");
  endif
  __backend_display__ ({}, {"image/png", path}, varargin{:});
endfunction
