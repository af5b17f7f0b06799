{

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

# launch <attempt> <task id> <task dir> [<wrapper function> <the task's values>]: starts
# the task's job.sh, or, given them, the wrapper function (defined in this bash) with the
# task's values
submitter_launch() {
  submitter_started=
  submitter_enter "$2" "$3" || return
  # claimed first, cleared after: a start given up (its client killed) that comes late
  # loses the claim and clears nothing of the attempt that superseded it
  submitter_claim "$3" "$1" || { submitter_superseded "$2" "$1"; return; }
  submitter_clear "$3" "$1"
  # The wrapper runs in a process group of its own (job control: no setsid or nohup process
  # to start), so that cancelling it reaches all it started, and a step script stopped at its
  # deadline does not take it along. It gets the default signal dispositions back, not this
  # script's ignored ones, but for HUP: ignored, as nohup would. It is run by a subshell of
  # this bash, not by a new one: a bash start is most of what a short task costs (a bash
  # without BASHPID, older than 4, could not tell the subshell's pid: it starts one). Where
  # $submitter_on_exit is set (the local launcher's), the subshell runs it as it exits.
  # Descriptor 7 is the launcher's own: no wrapper holds it. A wrapper function's own output
  # goes to the task's stdout and stderr, which it is told are `given`: no job.out nor job.err.
  set -m
  if [ -n "${4:-}" ] && [ -n "${BASHPID:-}" ]; then
    ([ -z "${submitter_on_exit:-}" ] || trap "$submitter_on_exit" EXIT
     set +m; trap - INT TERM PIPE; "$4" "$5" given) 7>&- >stdout 2>stderr </dev/null &
  elif [ -n "${4:-}" ]; then
    (trap - INT TERM PIPE; exec bash -c "$(declare -f "$4"); $4 \"\$1\" given" bash "$5" \
      7>&- >stdout 2>stderr </dev/null) &
  elif [ -n "${BASHPID:-}" ]; then
    ([ -z "${submitter_on_exit:-}" ] || trap "$submitter_on_exit" EXIT
     set +m; trap - INT TERM PIPE; . ./job.sh) 7>&- >job.out 2>job.err </dev/null &
  else
    (trap - INT TERM PIPE; exec bash job.sh 7>&- >job.out 2>job.err </dev/null) &
  fi
  local pid=$!
  set +m
  submitter_stamp "$pid"
  submitter_record "$3" "$1" "ok	$pid	$submitter_stamped"
  printf 'START\t%s\tok\t%s\n' "$2" "$pid"
  submitter_started=$pid
}

submitter_launch t1-attempt t1 /scratch/alice/submitter/t1
submitter_launch t2-attempt t2 /scratch/alice/submitter/t2
submitter_launch t7-attempt t7 /scratch/alice/submitter/t7
}
