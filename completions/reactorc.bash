# bash completion for reactorc(1)                          -*- shell-script -*-
#
# Installed by `make install` as share/bash-completion/completions/reactorc; or
# source it from ~/.bashrc. It needs nothing from the bash-completion package.
#
# Completes what reactorc's own parser accepts: options anywhere on the line (an
# unambiguous abbreviation of a long one too, and --opt=value), the command after
# the options, the values of --progress and --backend, local files for -k, -F and
# --tls-ca, the server names of the configuration file for -s, local paths for get's LOCAL and put's LOCAL operands, and remote paths
# for get's REMOTE, put's REMOTE, stat, ls and bench's get/stat PATH. A remote path
# is completed from `reactorc OPTIONS ls DIR` (one name a line, directories with a
# trailing /), run with the connection options of the line (-s, -k, -F, -t, --plain,
# --tls-ca, --tls-pin, --insecure) and -t 3 unless -t is given; when it fails,
# nothing is offered and nothing is printed. The operands after get's first (or
# put's first) may be more remote paths or the local destination: both are offered.
#
# tests/test_completion.cc checks this file against `reactorc --help` and a server.

_reactorc_long_with_value="--server --secret-file --config --timeout --retry --limit-rate
  --progress --connections --requests --duration --pipeline --source --tls-ca --tls-pin --backend"
_reactorc_long_flags="--continue --force --preserve --recursive --links --plain --insecure
  --json --long --human-readable --tutorial --tutorial-auth --quiet --verbose --help --version"

# _reactorc_split LINE: LINE's words as typed (quotes and backslashes kept), split at
# blanks outside quotes, into the array _reactorc_words; the last one, maybe empty, is
# the word being completed. _reactorc_break is the length of its part that readline
# does not replace: up to an open quote, or to its last unquoted COMP_WORDBREAKS
# character such as = or :.
_reactorc_split() {
  local line=$1 c q="" word="" started=0 brk=0 qpos=0 i n=${#1}
  local breaks=${COMP_WORDBREAKS-$' \t\n"\'><=;|&(:'}
  breaks=${breaks//[$' \t\n\'"']/}
  _reactorc_words=()
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
        ((started)) && _reactorc_words+=("$word")
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
  _reactorc_words+=("$word")
  _reactorc_break=$brk
}

# _reactorc_dequote WORD: WORD as the shell would pass it, quotes and backslashes
# removed (no expansion), in REPLY.
_reactorc_dequote() {
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

# _reactorc_resolve OPTION: the long option it names, abbreviations resolved as
# getopt_long does (a unique prefix), in REPLY; OPTION itself if none or several.
_reactorc_resolve() {
  local o found="" count=0
  for o in $_reactorc_long_with_value $_reactorc_long_flags; do
    [[ $o == "$1" ]] && { REPLY=$o; return; }
    [[ $o == "$1"* ]] && { found=$o; ((count++)); }
  done
  if ((count == 1)); then REPLY=$found; else REPLY=$1; fi
}

_reactorc_takes_value() {
  [[ " ${_reactorc_long_with_value//$'\n'/ } " == *" $1 "* ]]
}

# The connection options of the line, for the listing that completes a remote path.
_reactorc_note() {
  local value=$2
  case $1 in
    --secret-file | --config | --tls-ca) [[ $value == '~/'* ]] && value=$HOME/${value:2} ;;
  esac
  [[ $1 == --config ]] && _reactorc_config=$value
  case $1 in
    --server | --secret-file | --config | --timeout | --tls-ca | --tls-pin) _reactorc_conn+=("$1=$value") ;;
    --plain | --insecure) _reactorc_conn+=("$1") ;;
  esac
}

_reactorc_short_long() {
  case $1 in
    s) REPLY=--server ;; k) REPLY=--secret-file ;; F) REPLY=--config ;; t) REPLY=--timeout ;;
    n) REPLY=--requests ;; d) REPLY=--duration ;; c) REPLY=--connections ;;
    *) REPLY="" ;;
  esac
}

# _reactorc_local WORD: local files and directories that begin with WORD.
_reactorc_local() {
  local entry
  while IFS= read -r entry; do
    [[ -n $entry ]] && _reactorc_cands+=("$2$entry")
  done < <(compgen -f -- "$1" 2>/dev/null)
  _reactorc_files=1
}

# The names of the "server NAME" sections of the configuration file: -F's, else the
# default one.
_reactorc_servers() {
  local file=${_reactorc_config:-${XDG_CONFIG_HOME:-$HOME/.config}/reactor/config} key name rest
  [[ $file != none && -r $file ]] || return 0
  while read -r key name rest; do
    [[ $key == server && -n $name ]] && _reactorc_cands+=("$1$name")
  done <"$file"
}

# _reactorc_remote PROGRAM WORD: the remote entries of WORD's directory.
_reactorc_remote() {
  local prog=$1 word=$2 dir="" out entry
  [[ $word == */* ]] && dir=${word%/*}/
  [[ $prog == '~/'* ]] && prog=$HOME/${prog:2}
  type -P "$prog" >/dev/null 2>&1 || prog=reactorc
  local -a run=("$prog" -t 3 "${_reactorc_conn[@]}" ls)
  [[ -n $dir ]] && run+=(-- "$dir")
  if type -P timeout >/dev/null 2>&1; then run=(timeout 10 "${run[@]}"); fi
  out=$("${run[@]}" </dev/null 2>/dev/null) || return 0
  # A file named with a trailing / is described, not listed: nothing beneath it.
  [[ -n $dir && $out == "$dir" ]] && return 0
  while IFS= read -r entry; do
    [[ -n $entry ]] && _reactorc_cands+=("$dir$entry")
  done <<<"$out"
  _reactorc_files=1
}

_reactorc() {
  local IFS=$' \t\n' line point
  if [[ -n ${COMP_LINE+set} ]]; then
    line=$COMP_LINE point=${COMP_POINT:-${#COMP_LINE}}
  else
    line="${COMP_WORDS[*]}" point=${#line}
  fi
  # COMP_POINT counts bytes: cut in the C locale, where characters are bytes.
  ((point < ${#line})) && line=$(LC_ALL=C && printf '%s' "${line:0:point}")
  _reactorc_split "$line"
  local -a words=("${_reactorc_words[@]}")
  local n=${#words[@]} raw=${words[${#words[@]} - 1]}
  _reactorc_dequote "$raw"
  local cur=$REPLY
  _reactorc_dequote "${raw:0:_reactorc_break}"
  local keep=$REPLY
  _reactorc_dequote "${words[0]}"
  local prog=$REPLY

  COMPREPLY=()
  _reactorc_cands=()
  _reactorc_files=0
  _reactorc_conn=()
  _reactorc_config=""

  # The words before the current one, walked as reactorc's getopt_long walks them.
  local cmd="" expect="" dashdash=0 i j w opt letter
  local -a operands=()
  for ((i = 1; i < n - 1; i++)); do
    _reactorc_dequote "${words[i]}"
    w=$REPLY
    if [[ -n $expect ]]; then
      _reactorc_note "$expect" "$w"
      expect=""
    elif ((dashdash)) || [[ $w != -?* ]]; then
      if [[ -z $cmd ]]; then cmd=$w; else operands+=("$w"); fi
    elif [[ $w == -- ]]; then
      dashdash=1
    elif [[ $w == --* ]]; then
      _reactorc_resolve "${w%%=*}"
      opt=$REPLY
      if [[ $w == *=* ]]; then
        _reactorc_note "$opt" "${w#*=}"
      elif _reactorc_takes_value "$opt"; then
        expect=$opt
      else
        _reactorc_note "$opt"
      fi
    else
      for ((j = 1; j < ${#w}; j++)); do
        letter=${w:j:1}
        # -c takes a number (bench's --connections) only when one follows it.
        if [[ $letter == c ]]; then
          ((j + 1 == ${#w})) || continue
          if ((i + 1 == n - 1)); then
            [[ $cmd == bench || $cur == [0-9]* ]] || continue
          else
            _reactorc_dequote "${words[i + 1]}"
            [[ $REPLY == [0-9]* ]] || continue
          fi
        fi
        _reactorc_short_long "$letter"
        [[ -n $REPLY ]] || continue
        if ((j + 1 < ${#w})); then
          _reactorc_note "$REPLY" "${w:j+1}"
        else
          expect=$REPLY
        fi
        break
      done
    fi
  done

  local value="" prefix=""
  if [[ -z $expect && $dashdash == 0 && $cur == --*=* ]]; then
    _reactorc_resolve "${cur%%=*}"
    expect=$REPLY prefix=${cur%%=*}= value=${cur#*=}
  elif [[ -z $expect && $dashdash == 0 && $cur == -[!-]?* ]]; then
    # A value attached to a short option: -k~/secret, -s127.0.0.1.
    for ((j = 1; j < ${#cur} - 1; j++)); do
      _reactorc_short_long "${cur:j:1}"
      if [[ -n $REPLY && ${cur:j:1} != c ]]; then
        expect=$REPLY prefix=${cur:0:j+1} value=${cur:j+1}
        break
      fi
    done
  elif [[ -n $expect ]]; then
    value=$cur
  fi

  local c
  if [[ -n $expect ]]; then
    case $expect in
      --progress) for c in bar plane rainbow none json; do _reactorc_cands+=("$prefix$c"); done ;;
      --backend) for c in epoll poll; do _reactorc_cands+=("$prefix$c"); done ;;
      --secret-file | --tls-ca) _reactorc_local "$value" "$prefix" ;;
      --config)
        _reactorc_cands+=("${prefix}none")
        _reactorc_local "$value" "$prefix"
        ;;
      --server)
        _reactorc_servers "$prefix"
        while IFS= read -r c; do _reactorc_cands+=("$prefix$c"); done < <(compgen -A hostname -- "$value" 2>/dev/null)
        ;;
    esac
  elif ((!dashdash)) && [[ $cur == -* ]]; then
    local opts="-s --server -k --secret-file -F --config -t --timeout --plain --tls-ca --tls-pin
      --insecure --progress --backend -q --quiet -v --verbose -h --help -V --version"
    local transfer="-c --continue -f --force --retry --limit-rate -p --preserve -r --recursive --links
      --tutorial --tutorial-auth"
    local bench="-c --connections -n --requests -d --duration --pipeline --source --json"
    local ls="-l --long --human-readable"
    case $cmd in
      "") opts+=" $transfer $bench $ls" ;;
      get | put) opts+=" $transfer" ;;
      bench) opts+=" $bench" ;;
      ls) opts+=" $ls" ;;
    esac
    for c in $opts; do _reactorc_cands+=("$c"); done
  elif [[ -z $cmd ]]; then
    for c in get put stat ls ping send bench; do _reactorc_cands+=("$c"); done
  else
    local k=${#operands[@]}
    # A path that is absolute or starts at ~ or . is local: the server's are relative.
    local remote_ok=1
    [[ $cur == [/~.]* ]] && remote_ok=0
    case $cmd in
      get | put)
        if ((k == 0)); then
          if [[ $cmd == get ]]; then _reactorc_remote "$prog" "$cur"; else _reactorc_local "$cur"; fi
        else
          _reactorc_local "$cur"
          ((remote_ok)) && _reactorc_remote "$prog" "$cur"
        fi
        ;;
      stat | ls) ((k == 0)) && _reactorc_remote "$prog" "$cur" ;;
      bench)
        if ((k == 0)); then
          for c in ping get stat handshake idle; do _reactorc_cands+=("$c"); done
        elif ((k == 1)) && [[ ${operands[0]} == get || ${operands[0]} == stat ]]; then
          _reactorc_remote "$prog" "$cur"
        fi
        ;;
    esac
  fi

  # Offer what begins with the word, minus the part readline keeps (after = or :).
  local seen=$'\n'
  for c in "${_reactorc_cands[@]}"; do
    [[ $c == "$cur"* && $seen != *$'\n'"$c"$'\n'* ]] || continue
    seen+=$c$'\n'
    COMPREPLY+=("${c:${#keep}}")
  done
  if ((_reactorc_files)); then
    compopt -o filenames 2>/dev/null
    # A directory is not finished: no space after it.
    ((${#COMPREPLY[@]} == 1)) && [[ ${COMPREPLY[0]} == */ ]] && compopt -o nospace 2>/dev/null
  fi
  return 0
}

if type compopt >/dev/null 2>&1; then
  complete -F _reactorc reactorc
else
  complete -o filenames -F _reactorc reactorc
fi
