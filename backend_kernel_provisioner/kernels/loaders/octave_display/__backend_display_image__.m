## -*- texinfo -*-
## @deftypefn {} {} __backend_display_image__ (@var{caller}, @var{mime}, @var{image}, ...)
## The one body of display_png and display_jpeg: an image's bytes (uint8, staged as a file in the session
## folder) or the path of its file, sent as @var{mime}.
## @end deftypefn
function __backend_display_image__ (caller, mime, image, varargin)
  if (isa (image, "uint8"))
    path = [tempname(getenv ("BACKEND_SESSION_DIR"), "display-") "." strrep(mime, "image/", "")];
    file = fopen (path, "w");
    fwrite (file, image, "uint8");
    fclose (file);
  elseif (ischar (image) && exist (image, "file"))
    path = make_absolute_filename (image);
  else
    error ("%s: give the image's bytes (uint8) or the path of an existing file", caller);
  endif
  __backend_display__ ({}, {mime, path}, varargin{:});
endfunction
