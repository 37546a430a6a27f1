# Inspect (Shift-Tab) for the shell kernel, sourced by bash_loader.sh: what a name is to this bash,
# as `type` says, with the builtin's or keyword's `help`, a function's source, an alias, a variable's
# declaration, and for a program the head of its manual page (man -P cat), else its `whatis` line.
# Nothing is run but type, help, declare, man and whatis. Names starting with __bk are the loader's own.

__bk_inspect() {
  local id=$1 name="" detail="" kind text="" page lines=40
  { IFS= read -r name; IFS= read -r detail; } <<<"$2"
  [[ $detail =~ ^[1-9] ]] && lines=200
  if [[ $name == __bk* || ! $name =~ ^[A-Za-z_.][A-Za-z0-9_.+-]*$ ]]; then
    name=""
  fi
  if [[ -n $name ]]; then
    kind=$(type -t -- "$name" 2>/dev/null)
    case $kind in
      alias) text=$(alias -- "$name" 2>/dev/null) ;;
      keyword | builtin) text="$name is a shell $kind"$'\n\n'$(help "$name" 2>/dev/null | head -n "$lines") ;;
      function) text="$name is a shell function"$'\n\n'$(declare -f -- "$name" | head -n "$lines") ;;
      file)
        text=$(type -- "$name" 2>/dev/null)
        page=$(MANWIDTH=80 man -P cat -- "$name" 2>/dev/null | sed -e 's/.\x08//g' | sed -n "3,$((lines + 2))p")
        [[ -n $page ]] || page=$(whatis -- "$name" 2>/dev/null)
        [[ -n $page ]] && text+=$'\n\n'$page
        ;;
    esac
    if [[ -z $text ]] && declare -p -- "$name" &>/dev/null; then
      text=$(declare -p -- "$name" | head -c 4000)
    fi
  fi
  if [[ -z $text ]]; then
    printf '{"id":%s,"status":"ok","found":false}\n' "$id" >&"$__bk_status"
    return
  fi
  text=$(printf '%s' "$text" | tr -d '\001-\010\013-\037\177')  # controls JSON must not carry raw
  printf '{"id":%s,"status":"ok","found":true,"text":%s}\n' "$id" "$(__bk_string "$text")" >&"$__bk_status"
}
