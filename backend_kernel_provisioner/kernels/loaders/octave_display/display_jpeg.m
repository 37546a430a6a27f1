## -*- texinfo -*-
## @deftypefn {} {} display_jpeg (@var{bytes})
## @deftypefnx {} {} display_jpeg (@var{path})
## @deftypefnx {} {} display_jpeg (..., @var{metadata})
## Show an image in the notebook: its bytes (a uint8 vector) or the path of its file (the backend Octave
## kernel's rich output).
## @end deftypefn
function display_jpeg (image, varargin)
  if (isa (image, "uint8"))
    path = [tempname(getenv ("BACKEND_SESSION_DIR"), "display-") ".jpeg"];
    file = fopen (path, "w");
    fwrite (file, image, "uint8");
    fclose (file);
  elseif (ischar (image) && exist (image, "file"))
    path = make_absolute_filename (image);
  else
    error ("display_jpeg: give the image's bytes (uint8) or the path of an existing file");
  endif
  __backend_display__ ({}, {"image/jpeg", path}, varargin{:});
endfunction
