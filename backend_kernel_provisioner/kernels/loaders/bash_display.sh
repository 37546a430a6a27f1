# Rich output of the shell kernel, sourced by bash_loader.sh: the command `display`.
#
#   display [--html|--markdown|--latex|--svg|--json|--text|--png|--jpeg] [FILE|-] [--metadata JSON]
#
# shows FILE (or standard input, `-` or no FILE: `echo '<b>hi</b>' | display --html`); without a type
# option the type comes from FILE's extension. It writes one {"display": ...} line on the status channel
# (protocol: backend_kernel_provisioner/kernels/interpreter.py) naming the file, which the kernel reads
# (standard input is first copied to a staging file in the session folder), then waits for the kernel's
# line on the FIFO display-ack, so the display sits between what the cell printed before and after.
# It shadows ImageMagick's X11 viewer of the same name (`command display` runs that one).
__bk_display_dir=$BACKEND_SESSION_DIR
__bk_display_serial=0

__bk_display_usage() {
  echo "usage: display [--html|--markdown|--latex|--svg|--json|--text|--png|--jpeg] [FILE|-] [--metadata JSON]"
}

display() {
  local mime="" file="-" metadata="{}" path
  while (( $# )); do
    case $1 in
      --html) mime=text/html ;;
      --markdown|--md) mime=text/markdown ;;
      --latex) mime=text/latex ;;
      --svg) mime=image/svg+xml ;;
      --json) mime=application/json ;;
      --text) mime=text/plain ;;
      --png) mime=image/png ;;
      --jpeg|--jpg) mime=image/jpeg ;;
      --metadata) metadata=${2:-\{\}}; shift ;;
      -h|--help) __bk_display_usage; return 0 ;;
      -) file=- ;;
      -*) echo "display: unknown option $1" >&2; __bk_display_usage >&2; return 2 ;;
      *) file=$1 ;;
    esac
    shift
  done
  if [[ -z $mime ]]; then
    case ${file,,} in
      *.html|*.htm) mime=text/html ;;
      *.md|*.markdown) mime=text/markdown ;;
      *.tex) mime=text/latex ;;
      *.svg) mime=image/svg+xml ;;
      *.json) mime=application/json ;;
      *.txt) mime=text/plain ;;
      *.png) mime=image/png ;;
      *.jpg|*.jpeg) mime=image/jpeg ;;
      *) echo "display: give the type (--html, --png, ...) for ${file/#-/standard input}" >&2; return 2 ;;
    esac
  fi
  if [[ $file == - ]]; then
    path=$__bk_display_dir/display-$$-$(( ++__bk_display_serial ))
    cat > "$path" || return 1
  elif [[ -f $file && -r $file ]]; then
    path=$(realpath -- "$file")
  else
    echo "display: cannot read $file" >&2
    return 1
  fi
  printf '{"display":{"files":{"%s":%s},"metadata":%s}}\n' "$mime" "$(__bk_string "$path")" "$metadata" >&"$__bk_status"
  IFS= read -r _ < "$__bk_display_dir/display-ack"
  return 0
}
