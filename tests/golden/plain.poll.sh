
trap '' HUP INT TERM PIPE
submitter_flat() { tr '\n\t' '  '; }
# stamp <pid>: sets submitter_stamped to when that process started (empty: gone or a zombie),
# so a recycled pid is never taken for the task's. Builtins only on Linux: a poll must not
# fork per task.
submitter_stamp() {
  local stat fields IFS=$' \t\n'
  submitter_stamped=
  if [ -d /proc/self ]; then
    read -r stat <"/proc/$1/stat" 2>/dev/null || return 0
    # split as words, not read from a here-string: bash reads that a byte at a time
    # (after the name, the fields are numbers and a state letter: no glob, no quotes)
    fields=(${stat##*) })
    [ "${fields[0]}" != Z ] && submitter_stamped=${fields[19]}
  else
    submitter_stamped=$(ps -o lstart= -p "$1" 2>/dev/null | tr -s ' ' '_')
  fi
  return 0
}
# alive <task dir> <attempt> <pid>: that attempt's wrapper is still running
submitter_alive() {
  local verdict pid want
  IFS=$'\t' read -r verdict pid want <"$1/.attempt-$2" 2>/dev/null
  submitter_stamp "$3"
  [ -n "$submitter_stamped" ] && [ "$submitter_stamped" = "$want" ]
}
submitter_report() {
  local alive=-
  if [ -n "$4" ]; then
    if submitter_alive "$2" "$3" "$4"; then alive=1; else alive=0; fi
  fi
  submitter_read_status "$2"
  printf 'TASK\t%s\t%s\t%s\n' "$1" "$alive" "$submitter_line"
}
# read_status <task dir>: its status, one line of JSON, into submitter_line. A final status
# the wrapper wrote to .status.PID but could not rename into place (killed in between, its
# node gone) is the truth too, once whole (newline and all); as read_status_file does.
submitter_read_status() {
  local temp line
  submitter_line=
  if [ -f "$1/status" ]; then read -r submitter_line <"$1/status"; fi
  case $submitter_line in '' | '{"state": "running"'*) ;; *) return 0 ;; esac
  for temp in "$1"/.status.*; do
    read -r line <"$temp" 2>/dev/null || continue
    case $line in
      '{"state": "completed"'* | '{"state": "failed"'* | '{"state": "killed"'* | '{"state": "blocked"'*)
        submitter_line=$line; return 0 ;;
    esac
  done
  return 0
}
submitter_leftovers=(status stdout stderr job.out job.err command .cancel)
# clear <task dir> <attempt>: remove what an earlier run left there (rm runs only when there
# is some: a start of thousands of fresh tasks forks nothing per task)
submitter_clear() {
  local name found=()
  for name in "${submitter_leftovers[@]}"; do
    if [ -e "$1/$name" ]; then found+=("$1/$name"); fi
  done
  for name in "$1"/.status.*; do  # a final status never renamed into place
    if [ -e "$name" ]; then found+=("$name"); fi
  done
  # An earlier attempt's claim that holds its start's record: that start is over, and its
  # token is never claimed again. An empty one stays: it may be a resolve's, which a late
  # start of that attempt must still find and lose to.
  for name in "$1"/.attempt-*; do
    if [ "$name" != "$1/.attempt-$2" ] && [ -s "$name" ]; then found+=("$name"); fi
  done
  if [ "${#found[@]}" -gt 0 ]; then rm -f -- "${found[@]}"; fi
  return 0
}
# enter <task id> <task dir>: cd there
submitter_enter() {
  if ! cd -- "$2" 2>/dev/null; then
    printf 'START\t%s\terror\tcannot enter task directory %s\n' "$1" "$2"; return 1
  fi
}
# claim <task dir> <attempt>: an attempt starts only where this succeeds, and it succeeds
# once: the starter and a later run asking about a start it never heard of cannot both win.
# The claim is the exclusive creation (noclobber: O_EXCL) of the file .attempt-TOKEN.
submitter_claim() {
  local won=0
  set -C
  { : >"$1/.attempt-$2"; } 2>/dev/null || won=1
  set +C
  return "$won"
}
# record <task dir> <attempt> <line>: what the start did, kept in the claim file before it is
# reported; one short write, so a reader sees the whole line or an empty file
submitter_record() { printf '%s\n' "$3" >>"$1/.attempt-$2"; }
submitter_superseded() {
  printf 'START\t%s\tsuperseded\tattempt %s was given up before it started\n' "$1" "$2"
}
# resolve <attempt> <task id> <task dir>: what became of a start whose answer was never read
submitter_resolve() {
  mkdir -p -- "$3" 2>/dev/null
  local record=
  if submitter_claim "$3" "$1"; then
    printf 'RESOLVE\t%s\tnever\t\n' "$2"
  elif [ -s "$3/.attempt-$1" ] && IFS= read -r record <"$3/.attempt-$1" && [ -n "$record" ]; then
    printf 'RESOLVE\t%s\t%s\n' "$2" "$record"
  elif [ -n "$(find "$3/.attempt-$1" -maxdepth 0 -mmin +5 2>/dev/null)" ]; then
    printf 'RESOLVE\t%s\tstale\t\n' "$2"
  else
    printf 'RESOLVE\t%s\tpending\t\n' "$2"
  fi
}

submitter_rc=0
submitter_resolve t2-attempt t2 /scratch/alice/submitter/t2
submitter_report t1 /scratch/alice/submitter/t1 t1-attempt 4241
submitter_report t3 /scratch/alice/submitter/t3 t3-attempt 4243
submitter_report t4 /scratch/alice/submitter/t4 t4-attempt 4244
submitter_report t5 /scratch/alice/submitter/t5 t5-attempt 4245
submitter_report t6 /scratch/alice/submitter/t6 t6-attempt 4246
submitter_report t7 /scratch/alice/submitter/t7 t7-attempt 4247
