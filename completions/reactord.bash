# bash completion for reactord(8)                          -*- shell-script -*-
#
# Installed by `make install` as share/bash-completion/completions/reactord; or
# source it from ~/.bashrc. It needs nothing from the bash-completion package.
#
# Completes reactord's options (an unambiguous abbreviation of a long one too, and
# --opt=value), directories for -r, files for -k, --tls-cert and --tls-key, and the
# values of --backend. reactord takes no operands.
#
# tests/test_completion.cc checks this file against `reactord --help`.

_reactord_long_with_value="--root --listen --plain-listen --tls-cert --tls-key --secret-file
  --max-conns --idle-timeout --handshake-timeout --grace --max-upload --keep-free
  --partial-ttl --limit-rate --backend --tutorial-listen --tutorial-file"
_reactord_long_flags="--writable --plain --tutorial-md5 --tutorial-auth --tutorial-insecure --quiet --verbose
  --help --version"

# _reactord_split LINE: LINE's words as typed (quotes and backslashes kept), split at
# blanks outside quotes, into the array _reactord_words; the last one, maybe empty, is
# the word being completed. _reactord_break is the length of its part that readline
# does not replace: up to an open quote, or to its last unquoted COMP_WORDBREAKS
# character such as = or :.
_reactord_split() {
  local line=$1 c q="" word="" started=0 brk=0 qpos=0 i n=${#1}
  local breaks=${COMP_WORDBREAKS-$' \t\n"\'><=;|&(:'}
  breaks=${breaks//[$' \t\n\'"']/}
  _reactord_words=()
  for ((i = 0; i < n; i++)); do
    c=${line:i:1}
    if [[ -n $q ]]; then
      if [[ $c == "$q" ]]; then
        q=""
      elif [[ $q == '"' && $c == \\ ]] && ((i + 1 < n)); then
        word+=$c
        ((i++))
        c=${line:i:1}
      fi
      word+=$c
      continue
    fi
    case $c in
      [[:blank:]] | $'\n')
        ((started)) && _reactord_words+=("$word")
        word="" started=0 brk=0
        ;;
      \\)
        word+=$c started=1
        if ((i + 1 < n)); then
          ((i++))
          word+=${line:i:1}
        fi
        ;;
      [\'\"])
        q=$c word+=$c started=1 qpos=$((${#word}))
        ;;
      *)
        word+=$c started=1
        [[ -n $breaks && $breaks == *"$c"* ]] && brk=${#word}
        ;;
    esac
  done
  [[ -n $q ]] && brk=$qpos
  _reactord_words+=("$word")
  _reactord_break=$brk
}

# _reactord_dequote WORD: WORD as the shell would pass it, quotes and backslashes
# removed (no expansion), in REPLY.
_reactord_dequote() {
  local s=$1 out="" c q="" i n=${#1}
  for ((i = 0; i < n; i++)); do
    c=${s:i:1}
    if [[ $q == "'" ]]; then
      if [[ $c == "'" ]]; then q=""; else out+=$c; fi
    elif [[ $q == '"' ]]; then
      if [[ $c == '"' ]]; then
        q=""
      elif [[ $c == \\ && ${s:i+1:1} == [\"\\\$\`] ]]; then
        ((i++))
        out+=${s:i:1}
      else
        out+=$c
      fi
    else
      case $c in
        \\) ((i++)); out+=${s:i:1} ;;
        [\'\"]) q=$c ;;
        *) out+=$c ;;
      esac
    fi
  done
  REPLY=$out
}

_reactord_resolve() {
  local o found="" count=0
  for o in $_reactord_long_with_value $_reactord_long_flags; do
    [[ $o == "$1" ]] && { REPLY=$o; return; }
    [[ $o == "$1"* ]] && { found=$o; ((count++)); }
  done
  if ((count == 1)); then REPLY=$found; else REPLY=$1; fi
}

_reactord_short_long() {
  case $1 in
    r) REPLY=--root ;; l) REPLY=--listen ;; k) REPLY=--secret-file ;; m) REPLY=--max-conns ;;
    *) REPLY="" ;;
  esac
}

_reactord() {
  local IFS=$' \t\n' line point
  if [[ -n ${COMP_LINE+set} ]]; then
    line=$COMP_LINE point=${COMP_POINT:-${#COMP_LINE}}
  else
    line="${COMP_WORDS[*]}" point=${#line}
  fi
  # COMP_POINT counts bytes: cut in the C locale, where characters are bytes.
  ((point < ${#line})) && line=$(LC_ALL=C && printf '%s' "${line:0:point}")
  _reactord_split "$line"
  local -a words=("${_reactord_words[@]}")
  local n=${#words[@]} raw=${words[${#words[@]} - 1]}
  _reactord_dequote "$raw"
  local cur=$REPLY
  _reactord_dequote "${raw:0:_reactord_break}"
  local keep=$REPLY
  COMPREPLY=()

  # The option the current word is the value of, if any: the previous word's.
  local expect="" prefix="" value=$cur w j dashdash=0
  local -a cands=()
  for ((j = 1; j < n - 1; j++)); do
    [[ ${words[j]} == -- ]] && dashdash=1
  done
  if ((n > 2)) && ((!dashdash)); then
    _reactord_dequote "${words[n - 2]}"
    w=$REPLY
    if [[ $w == --?* && $w != *=* ]]; then
      _reactord_resolve "$w"
      [[ " ${_reactord_long_with_value//$'\n'/ } " == *" $REPLY "* ]] && expect=$REPLY
    elif [[ $w == -[!-]* ]]; then
      # The last letter of a cluster takes the next word if it takes a value.
      for ((j = 1; j < ${#w}; j++)); do
        _reactord_short_long "${w:j:1}"
        [[ -n $REPLY ]] && break
      done
      ((j == ${#w} - 1)) && expect=$REPLY
    fi
  fi
  if ((!dashdash)) && [[ -z $expect && $cur == --*=* ]]; then
    _reactord_resolve "${cur%%=*}"
    expect=$REPLY prefix=${cur%%=*}= value=${cur#*=}
  elif ((!dashdash)) && [[ -z $expect && $cur == -[!-]?* ]]; then
    for ((j = 1; j < ${#cur} - 1; j++)); do
      _reactord_short_long "${cur:j:1}"
      if [[ -n $REPLY ]]; then
        expect=$REPLY prefix=${cur:0:j+1} value=${cur:j+1}
        break
      fi
    done
  fi

  local c files=0
  if [[ -n $expect ]]; then
    case $expect in
      --backend) for c in epoll poll; do cands+=("$prefix$c"); done ;;
      --root)
        while IFS= read -r c; do cands+=("$prefix$c"); done < <(compgen -d -- "$value" 2>/dev/null)
        files=1
        ;;
      --secret-file | --tls-cert | --tls-key)
        while IFS= read -r c; do cands+=("$prefix$c"); done < <(compgen -f -- "$value" 2>/dev/null)
        files=1
        ;;
    esac
  elif ((!dashdash)) && [[ -z $cur || $cur == -* ]]; then
    for c in -r --root -w --writable --max-upload --keep-free --partial-ttl -l --listen \
      --plain-listen --plain --tls-cert --tls-key -k --secret-file -m --max-conns \
      --idle-timeout --limit-rate --handshake-timeout --grace --backend --tutorial-listen \
      --tutorial-file --tutorial-md5 --tutorial-auth --tutorial-insecure -q --quiet -v --verbose \
      -h --help -V --version; do
      cands+=("$c")
    done
  fi

  for c in "${cands[@]}"; do
    [[ $c == "$cur"* ]] && COMPREPLY+=("${c:${#keep}}")
  done
  ((files)) && compopt -o filenames 2>/dev/null
  return 0
}

if type compopt >/dev/null 2>&1; then
  complete -F _reactord reactord
else
  complete -o filenames -F _reactord reactord
fi
