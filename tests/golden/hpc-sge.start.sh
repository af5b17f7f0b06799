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


submitter_submit() {
  local attempt=$1 task=$2 dir=$3; shift 3
  submitter_enter "$task" "$dir" || return
  submitter_claim "$dir" "$attempt" || { submitter_superseded "$task" "$attempt"; return; }
  submitter_clear "$dir" "$attempt"
  local out rc
  if [ "$SUBMITTER_STDIN" = 1 ]; then
    out=$(trap - HUP INT TERM PIPE; "$@" <job.sh 2>&1); rc=$?
  else
    out=$(trap - HUP INT TERM PIPE; "$@" 2>&1 </dev/null); rc=$?
  fi
  out=$(printf '%s' "$out" | submitter_flat)
  if [ "$rc" -eq 0 ]; then
    submitter_record "$dir" "$attempt" "ok	$out"
    printf 'START\t%s\tok\t%s\n' "$task" "$out"
  else
    submitter_record "$dir" "$attempt" "error	exit $rc: $out"
    printf 'START\t%s\terror\texit %s: %s\n' "$task" "$rc" "$out"
  fi
}

SUBMITTER_STDIN=0
submitter_submit t1-attempt t1 /scratch/alice/submitter/t1 qsub -terse job.sh
submitter_submit t2-attempt t2 /scratch/alice/submitter/t2 qsub -terse job.sh
submitter_submit t7-attempt t7 /scratch/alice/submitter/t7 qsub -terse -hold_jid 4241,4243 job.sh

submitter_group() {
  local kind=$1 group=$2 jobs=$3 given=$4; shift 4
  local -a attempts=() tasks=() dirs=() indices=() outs=()
  local index=0 args=("$@") missing=() i
  # a pool's members get no files of their own before they run: their directories are made
  # here, in one mkdir
  if [ "$kind" = pool ]; then
    for ((i = 2; i < ${#args[@]}; i += 3)); do
      [ "${args[i - 2]}" != -- ] || break
      [ -d "${args[i]}" ] || missing+=("${args[i]}")
    done
    [ "${#missing[@]}" -eq 0 ] || printf '%s\0' "${missing[@]}" | xargs -0 mkdir -p -- 2>/dev/null
  fi
  : >"$group/members.tmp"
  while [ "$1" != -- ]; do
    if [ -d "$3" ] && submitter_claim "$3" "$1" && submitter_clear "$3" "$1"; then
      printf '%s\n' "$3" >>"$group/members.tmp"
      attempts+=("$1"); tasks+=("$2"); dirs+=("$3"); indices+=("$index")
    else
      printf '\n' >>"$group/members.tmp"
      printf 'START\t%s\terror\tattempt %s could not be claimed in %s\n' "$2" "$1" "$3"
    fi
    index=$((index + 1)); shift 3
  done
  shift
  mv -f -- "$group/members.tmp" "$group/members"
  [ "${#tasks[@]}" -gt 0 ] || return 0
  local out rc n error= joined i
  for ((n = 0; n < jobs; n++)); do
    out=$(cd -- "$group" && trap - HUP INT TERM PIPE; "$@" 2>&1 <"$given"); rc=$?
    out=$(printf '%s' "$out" | submitter_flat)
    if [ "$rc" -eq 0 ]; then outs+=("$out"); else error="exit $rc: $out"; fi
  done
  joined=$(IFS=$'\x1f'; printf '%s' "${outs[*]}")
  for i in "${!tasks[@]}"; do
    if [ "${#outs[@]}" -gt 0 ]; then
      submitter_record "${dirs[$i]}" "${attempts[$i]}" "$kind	${indices[$i]}	$joined"
      printf 'START\t%s\t%s\t%s\t%s\n' "${tasks[$i]}" "$kind" "${indices[$i]}" "$joined"
    else
      submitter_record "${dirs[$i]}" "${attempts[$i]}" "error	$error"
      printf 'START\t%s\terror\t%s\n' "${tasks[$i]}" "$error"
    fi
  done
}

mkdir -p -- /scratch/alice/submitter/.groups/g1 && submitter_group array /scratch/alice/submitter/.groups/g1 1 /dev/null t3-attempt t3 /scratch/alice/submitter/t3 t4-attempt t4 /scratch/alice/submitter/t4 -- qsub -terse /scratch/alice/submitter/.groups/g1/array.sh
mkdir -p -- /scratch/alice/submitter/.groups/g2 && submitter_group pool /scratch/alice/submitter/.groups/g2 3 /dev/null t5-attempt t5 /scratch/alice/submitter/t5 t6-attempt t6 /scratch/alice/submitter/t6 -- qsub -terse /scratch/alice/submitter/.groups/g2/packed.sh
}
