# Loader of the shell kernel (protocol: backend_kernel_provisioner/kernels/session.py).
# Each cell is sourced inside this one bash process (not a subshell), so `cd`, variables, functions
# and aliases last. A cell fails when its last command fails (the exit code is reported).
# SIGINT stops the cell: the trap returns from the sourced cell, and a DEBUG trap unwinds any
# functions the cell was inside. Names starting with __bk are the loader's own.
set +e
set -T
shopt -s expand_aliases
exec {__bk_cells}<"$BACKEND_SESSION_CELLS" {__bk_status}>"$BACKEND_SESSION_STATUS"
source "${BASH_SOURCE[0]%/*}/bash_display.sh"  # the command `display`: rich output
unset BACKEND_SESSION_CELLS BACKEND_SESSION_STATUS BACKEND_SESSION_DIR

# The kernel runs this bash on a pseudo-terminal (stdin and stdout; stderr is a pipe). A non-interactive
# bash does not track the window size: LINES/COLUMNS start from the terminal's (%resize updates both).
# Nobody can page through a pager's output in a notebook: programs print it whole instead.
if [[ -t 0 ]]; then
  IFS=' ' read -r LINES COLUMNS < <(stty size 2>/dev/null) && export LINES COLUMNS
  export PAGER="${PAGER:-cat}" GIT_PAGER="${GIT_PAGER:-cat}" MANPAGER="${MANPAGER:-cat}" \
    SYSTEMD_PAGER="${SYSTEMD_PAGER:-cat}"
  [[ -n $TERM ]] || export TERM=xterm
fi

__bk_string() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\t'/\\t}
  s=${s//$'\r'/\\r}
  printf '"%s"' "$s"
}

__bk_complete() {
  local id=$1 text=$2 token words line
  token=${text##*[[:space:]\"\'=\;\|\&\(\)\<\>]}
  line=${text##*[$'\n';|&(]}
  line=${line#"${line%%[![:space:]]*}"}
  if [[ $token == \$* ]]; then
    words=$(compgen -P '$' -v -- "${token#\$}")
  elif [[ $line == "$token" && $token != */* ]]; then
    words=$(compgen -c -- "$token" | sort -u)
  else
    words=$(compgen -f -- "$token")
  fi
  local out="" word
  while IFS= read -r word; do
    [[ -z $word || $word == __bk* ]] && continue
    out+="${out:+,}$(__bk_string "$word")"
  done <<<"$words"
  printf '{"id":%s,"status":"ok","token":%s,"matches":[%s]}\n' "$id" "$(__bk_string "$token")" "$out" >&"$__bk_status"
}

source "${BASH_SOURCE[0]%/*}/bash_inspect.sh"  # __bk_inspect: Shift-Tab's answers

__bk_main() {
  local __bk_line __bk_id __bk_kind __bk_path __bk_rc
  trap ':' INT
  printf '{"status":"ready"}\n' >&"$__bk_status"
  while IFS= read -r -u "$__bk_cells" __bk_line; do
    __bk_id=${__bk_line%% *}
    __bk_line=${__bk_line#* }
    __bk_kind=${__bk_line%% *}
    __bk_path=${__bk_line#* }
    if [[ $__bk_kind == complete ]]; then
      __bk_complete "$__bk_id" "$(<"$__bk_path")"
      continue
    fi
    if [[ $__bk_kind == inspect ]]; then
      __bk_inspect "$__bk_id" "$(<"$__bk_path")"
      continue
    fi
    __bk_int=
    trap '__bk_int=1; trap '\''[[ -n $__bk_int ]] && (( ${#BASH_SOURCE[@]} > 2 )) && return 130'\'' DEBUG; return 130' INT
    source "$__bk_path"
    __bk_rc=$?
    trap - DEBUG
    trap ':' INT
    if [[ -n $__bk_int ]]; then
      printf '{"id":%s,"status":"error","ename":"KeyboardInterrupt","evalue":"interrupted","exit_code":130}\n' \
        "$__bk_id" >&"$__bk_status"
    elif (( __bk_rc == 0 )); then
      printf '{"id":%s,"status":"ok"}\n' "$__bk_id" >&"$__bk_status"
    else
      printf '{"id":%s,"status":"error","ename":"ExitCode","evalue":"exit code %s","exit_code":%s}\n' \
        "$__bk_id" "$__bk_rc" "$__bk_rc" >&"$__bk_status"
    fi
    __bk_int=
  done
}

__bk_main
