#!/bin/bash
#PBS --comment=golden
#PBS -N align-hpc-pbs
#PBS -r n
#PBS -l nodes=1:ppn=4:gpus=1
#PBS -l mem=8192mb
#PBS -l walltime=02:00:00
#PBS -q normal
#PBS -o /scratch/alice/submitter/7858a7f051a64b82/job.out
#PBS -e /scratch/alice/submitter/7858a7f051a64b82/job.err
# submitter task 7858a7f051a64b82 (pack pbs@1.4)
# --- submitter job wrapper (bash + coreutils only) ---
set -u
# This wrapper's own pid: a local or ssh host's launcher runs it in a subshell of its own
# (`. job.sh`, or the function below: no new bash to start), where $$ is the launcher's.
submitter_pid=${BASHPID:-$$}
SUBMITTER_TASK_ID=7858a7f051a64b82
SUBMITTER_TASK_NAME=align-hpc-pbs
SUBMITTER_TASK_DIR=/scratch/alice/submitter/7858a7f051a64b82
SUBMITTER_RUN_DIR=/scratch/alice/submitter/7858a7f051a64b82
submitter_outputs=( results/hpc-pbs.bam )
submitter_patterns=( )
submitter_links=( )
submitter_env=( OMP_NUM_THREADS=4 )
submitter_interpreter=( bash )
submitter_command=$'mkdir -p results\necho aligned > results/hpc-pbs.bam\n'
submitter_streams=
case $SUBMITTER_TASK_DIR in "~/"*) SUBMITTER_TASK_DIR=$HOME/${SUBMITTER_TASK_DIR#"~/"} ;; esac
case $SUBMITTER_RUN_DIR in "~/"*) SUBMITTER_RUN_DIR=$HOME/${SUBMITTER_RUN_DIR#"~/"} ;; esac
export SUBMITTER_TASK_ID SUBMITTER_TASK_NAME SUBMITTER_TASK_DIR SUBMITTER_RUN_DIR
submitter_child=
submitter_group=
submitter_starting=
submitter_pending=
submitter_pending_signal=
# Seconds between TERM and KILL when the task is stopped (host var kill_grace).
submitter_grace=10
# The scheduler rounds a walltime up to its own unit (a minute on SLURM and LSF), checks it
# now and then, and knows only the whole job when the task is packed with others: the
# wrapper's watchdog enforces the declared walltime in every grouping, and the scheduler's
# limit is the safety net. Packed, a kill of this task alone is the watchdog's too.
submitter_watch=1

# Its walltime as the messages say it (none: empty).
submitter_walltime=02:00:00
submitter_logs_ref=

# The wrapper forks as little as it can (on a busy host a fork costs more than a small task):
# builtins set variables, and no command substitution lies on the way of a task that runs.
# json <variable> <text>: the text as a JSON string, into the variable.
submitter_json() {
  local text=$2
  text=${text//\\/\\\\}
  text=${text//\"/\\\"}
  text=${text//$'\n'/\\n}
  text=${text//$'\r'/\\r}
  text=${text//$'\t'/\\t}
  if [[ $text == *[[:cntrl:]]* ]]; then submitter_json_controls; fi
  printf -v "$1" '"%s"' "$text"
}

# json_controls: the control characters left in json's text as \u escapes (a file name may
# hold any byte but / and NUL).
submitter_json_controls() {
  local rest=$text char code
  text=
  while [ -n "$rest" ]; do
    char=${rest:0:1}
    rest=${rest:1}
    if [[ $char == [[:cntrl:]] ]]; then
      printf -v code '%d' "'$char"
      printf -v char '\\u%04x' "$code"
    fi
    text+=$char
  done
}

# now: the UTC time into submitter_now, by bash's own clock where it has one: to the
# millisecond with EPOCHREALTIME (bash 5), to the second with printf's %()T (bash 4.2).
submitter_now() {
  local epoch=${EPOCHREALTIME:-} fraction=
  if [ -n "$epoch" ]; then
    epoch=${epoch/,/.}  # the locale's decimal point
    fraction=.${epoch#*.}
    fraction=${fraction:0:4}
    epoch=${epoch%.*}
  else
    epoch=-1
  fi
  if ! TZ=UTC0 printf -v submitter_now "%(%Y-%m-%dT%H:%M:%S)T${fraction}Z" "$epoch" 2>/dev/null; then
    submitter_now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  fi
}
# status <state> <exit code or null> <end time or ""> <reason> [what the output patterns
# matched, as JSON]. `running` is written in place, as one short write: a reader finds no
# status yet, or all of it (a rename costs a process, and this status says only what the next
# one will say better). On a batch host an end is written to a temporary file and renamed, so
# a reader never sees half of it. On a process host it is written in place too, saving the
# rename's process: a reader finds the earlier status, none, part of a line (not JSON: read
# again at the next poll) or all of it, and a poll there looks whether the wrapper still runs
# before it reads the status, so it finds an ended wrapper's status whole.
submitter_status() {
  local tmp="$SUBMITTER_TASK_DIR/.status.$submitter_pid"
  local state end reason line
  # A pool member's job writes only over its own claim: a job whose node failed, then came
  # back, finds its member cleared for a retry, or taken by the retry's job, and leaves it be.
  if [ -n "${SUBMITTER_LANE_LOGS:-}" ]; then
    line=
    read -r line <"$SUBMITTER_TASK_DIR/status" 2>/dev/null
    case $line in *"\"job_id\": $submitter_job_id,"*) ;; *) return 0 ;; esac
  fi
  submitter_json state "$1"
  submitter_json end "$3"
  submitter_json reason "$4"
  printf -v line '{"state": %s, "exit_code": %s, "hostname": %s, "pid": %s, "job_id": %s, "start": %s, "end": %s, "reason": %s, "matched": %s' \
    "$state" "$2" "$submitter_host" "$submitter_pid" "$submitter_job_id" "$submitter_start" "$end" "$reason" "${5:-{\}}"
  if [ "$1" != running ] && [ -n "${SUBMITTER_LANE_LOGS:-}" ]; then submitter_archive_logs; fi
  line+=$submitter_logs_ref}
  if [ "$1" = running ]; then
    printf '%s\n' "$line" >"$SUBMITTER_TASK_DIR/status"
  elif [ "$1" = completed ] && [ -n "${SUBMITTER_LANE_LOGS:-}" ]; then
    # A pool task's end is written in place too: the rename's process was a fifth of what a
    # short task cost its lane. Its lane reads it after the wrapper's end; a poll asks the
    # scheduler before it reads the status files, so a status it reads mid-write (empty or
    # cut short: no JSON) is read while the job still runs, and read again at the next poll.
    printf '%s\n' "$line" >"$SUBMITTER_TASK_DIR/status"
  elif [ "$1" = completed ]; then
    # The wrapper's last step, and its exit code is mv's, 0: mv takes the wrapper's process
    # rather than a fork of it (thousands of short tasks feel that fork).
    printf '%s\n' "$line" >"$tmp" && exec mv -f "$tmp" "$SUBMITTER_TASK_DIR/status"
  else
    printf '%s\n' "$line" >"$tmp" && mv -f "$tmp" "$SUBMITTER_TASK_DIR/status"
  fi
}

# archive_logs: a pool member's logs go into its lane's log file ($SUBMITTER_LANE_LOGS, open
# on descriptor 4 for appending), one part after another, so that a finished task leaves no
# log files of its own on the host: its stdout, its stderr, then the wrapper's own output (the
# lane's $SUBMITTER_LANE_WRAPPER.out/.err), an empty part not copied. Each part's length is
# what the copy added to the file; the final status names the file, where the task's parts
# start and their lengths. Only this lane writes to it. The lane removes the task's log files.
submitter_archive_logs() {
  local part start at sizes= path
  [ -z "$submitter_logs_ref" ] && [ -e "$SUBMITTER_TASK_DIR/stdout" ] || return 0
  submitter_lane_size || return 0
  start=$submitter_size at=$submitter_size
  for part in "$SUBMITTER_TASK_DIR/stdout" "$SUBMITTER_TASK_DIR/stderr" \
      "$SUBMITTER_LANE_WRAPPER.out" "$SUBMITTER_LANE_WRAPPER.err"; do
    if [ -s "$part" ]; then
      cat -- "$part" >&4 && submitter_lane_size || return 0
    fi
    sizes+=", $((submitter_size - at))"
    at=$submitter_size
  done
  submitter_json path "$SUBMITTER_LANE_LOGS"
  submitter_logs_ref=", \"logs\": [$path, $start$sizes]"
}

# lane_size: the lane's log file's size, into submitter_size: where descriptor 4 (appending)
# stands, read from /proc without a process; `stat` where there is no /proc.
submitter_lane_size() {
  local line
  submitter_size=
  if [ -r "/proc/$submitter_pid/fdinfo/4" ]; then
    while IFS= read -r line; do
      case $line in pos:*) submitter_size=${line//[!0-9]/}; break ;; esac
    done <"/proc/$submitter_pid/fdinfo/4"
  else
    submitter_size=$(stat -c %s -- "$SUBMITTER_LANE_LOGS" 2>/dev/null)
  fi
  [ -n "$submitter_size" ]
}

# match_outputs: what each declared pattern matched (relative to the run directory, or
# absolute), as a JSON object into submitter_matched, for the client to bring back; a pattern
# matching nothing joins submitter_missing. The task has ended: the glob options set here
# reach none of its commands.
submitter_match_outputs() {
  local IFS= pattern match json own= found entries=()
  if [ "$SUBMITTER_RUN_DIR" = "$SUBMITTER_TASK_DIR" ]; then own=1; fi
  shopt -s nullglob globstar 2>/dev/null
  for pattern in ${submitter_patterns[@]+"${submitter_patterns[@]}"}; do
    found=()
    for match in $pattern; do
      if [ -n "$own" ]; then  # the wrapper's files are not the task's outputs
        case $match in job.sh | task.json | command | stdout | stderr | status | job.out | job.err) continue ;; esac
      fi
      submitter_json json "$match"
      found+=("$json")
    done
    if [ -z "${found[*]-}" ]; then
      submitter_missing="$submitter_missing${submitter_missing:+, }$pattern (no match)"
      continue
    fi
    submitter_json json "$pattern"
    IFS=,
    entries+=("$json: [${found[*]}]")
    IFS=
  done
  shopt -u nullglob globstar 2>/dev/null
  IFS=,
  submitter_matched="{${entries[*]-}}"
}

# finish <the command's exit code>: the task's end, recorded, and the wrapper's. The command
# has ended: from here on no signal stops the wrapper, nor the mv that may replace it (an
# ignored signal stays ignored across exec), so that a kill or the scheduler's TERM coming
# now cannot leave the task's end unrecorded. Stopped by the watchdog (its mark in .stopped),
# the task ends as the watchdog's reason says, once nothing of it is left.
submitter_finish() {
  trap '' TERM INT HUP
  local rc=$1 stopped=
  if [ -e "$SUBMITTER_TASK_DIR/.stopped" ]; then
    read -r stopped <"$SUBMITTER_TASK_DIR/.stopped"
    submitter_stop_task
  fi
  submitter_child=
  submitter_group=
  exec 9>&-
  submitter_now
  submitter_end=$submitter_now
  case $stopped in
    walltime)
      submitter_status failed 143 "$submitter_end" "walltime exceeded: killed after $submitter_walltime by the wrapper"
      exit 143 ;;
    cancel)
      submitter_status killed 143 "$submitter_end" "killed by the user"
      exit 143 ;;
  esac
  if [ "$rc" -ne 0 ]; then
    submitter_status failed "$rc" "$submitter_end" "exit code $rc"
    exit "$rc"
  fi
  submitter_missing=
  for submitter_output in ${submitter_outputs[@]+"${submitter_outputs[@]}"}; do
    if [ ! -e "$submitter_output" ]; then
      submitter_missing="$submitter_missing${submitter_missing:+, }$submitter_output"
    fi
  done
  submitter_match_outputs
  if [ -n "$submitter_missing" ]; then
    submitter_status failed 0 "$submitter_end" "missing declared output: $submitter_missing"
    exit 1
  fi
  submitter_status completed 0 "$submitter_end" "" "$submitter_matched"
  exit 0
}

# TERM to the task's process group, KILL to whatever is left of it after the grace time: the
# task's children go with it, including those that ignore TERM or were left running. The KILL
# is said on stderr before it is sent: once the task's group is gone, its wrapper's final
# status may be written, and its logs read, at any moment. Bash's own "Killed" job notice is
# kept out of the wrapper's stderr.
submitter_stop_task() {
  if [ -z "$submitter_group" ]; then return 0; fi
  local deadline=$((SECONDS + submitter_grace)) killed=0
  kill -TERM -- "$submitter_group" 2>/dev/null
  while kill -0 -- "$submitter_group" 2>/dev/null; do
    if [ "$SECONDS" -gt "$deadline" ]; then
      if [ "$killed" = 0 ]; then
        printf 'submitter: the task was still running %s s after SIGTERM: sent SIGKILL\n' "$submitter_grace" >&2
      fi
      kill -KILL -- "$submitter_group" 2>/dev/null
      killed=1
      if [ "$SECONDS" -gt $((deadline + 2)) ]; then break; fi
    fi
    sleep 0.1 2>/dev/null || sleep 1
  done
  wait "$submitter_child" 2>/dev/null
}

# runs: the task's command still runs (not gone, nor a zombie its wrapper has not reaped yet).
submitter_runs() {
  local stat
  kill -0 "$submitter_child" 2>/dev/null || return 1
  read -r stat <"/proc/$submitter_child/stat" 2>/dev/null || return 0
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

submitter_on_signal() {
  if [ -n "$submitter_starting" ]; then
    # The task's pid is not known yet: handled as soon as it is.
    submitter_pending=$1 submitter_pending_signal=$2
    return
  fi
  trap '' TERM INT HUP
  exec 9>&-
  submitter_stop_task
  submitter_now
  local stopped=
  if [ -f "$SUBMITTER_TASK_DIR/.stopped" ]; then read -r stopped <"$SUBMITTER_TASK_DIR/.stopped"; fi
  if [ "$stopped" = walltime ]; then
    submitter_status failed "$1" "$submitter_now" "walltime exceeded: killed after $submitter_walltime by the wrapper"
  elif [ -f "$SUBMITTER_TASK_DIR/.cancel" ]; then
    submitter_status killed "$1" "$submitter_now" "killed by the user"
  else
    submitter_status killed "$1" "$submitter_now" "killed by SIG$2"
  fi
  exit "$1"
}
submitter_now
submitter_json submitter_start "$submitter_now"
submitter_host=
read -r submitter_host </proc/sys/kernel/hostname 2>/dev/null
if [ -z "$submitter_host" ]; then submitter_host=$(uname -n); fi
submitter_json submitter_host "$submitter_host"
submitter_json submitter_job_id "${PBS_JOBID:-${SLURM_JOB_ID:-}}"

trap 'submitter_on_signal 143 TERM' TERM
trap 'submitter_on_signal 130 INT' INT
trap 'submitter_on_signal 129 HUP' HUP

# A task chained after its upstream tasks' jobs (apply --detach) starts once those jobs have
# ended, however they ended: it runs only if each of its own upstream tasks completed, whatever
# became of the tasks that shared their jobs. The list is the task directory, then the name,
# of each upstream task, a line each.
if [ -f "$SUBMITTER_TASK_DIR/upstream" ]; then
  submitter_blocked=
  while [ -z "$submitter_blocked" ] && IFS= read -r submitter_up_dir && IFS= read -r submitter_up_name; do
    case $submitter_up_dir in "~/"*) submitter_up_dir=$HOME/${submitter_up_dir#"~/"} ;; esac
    submitter_line=
    read -r submitter_line <"$submitter_up_dir/status" 2>/dev/null
    case $submitter_line in
      *'"state": "completed"'*) ;;
      *'"state": "blocked"'*'"reason": "'*)  # name the task that did not complete
        submitter_blocked=${submitter_line#*'"reason": "'}
        submitter_blocked=${submitter_blocked%%'", "'*}
        submitter_blocked=${submitter_blocked//\\\"/\"}
        submitter_blocked=${submitter_blocked//\\\\/\\} ;;
      *'"state": "running"'*)
        submitter_blocked="upstream task '$submitter_up_name' ended while its status said running" ;;
      *'"state": "'*)
        submitter_blocked=${submitter_line#*'"state": "'}
        submitter_blocked="upstream task '$submitter_up_name' ${submitter_blocked%%'"'*}" ;;
      *) submitter_blocked="upstream task '$submitter_up_name' ended without a status" ;;
    esac
  done <"$SUBMITTER_TASK_DIR/upstream"
  if [ -n "$submitter_blocked" ]; then
    submitter_now
    submitter_status blocked null "$submitter_now" "$submitter_blocked"
    exit 0
  fi
  rm -f -- "$SUBMITTER_TASK_DIR/upstream"
fi
if ! { [ -d "$SUBMITTER_RUN_DIR" ] || mkdir -p -- "$SUBMITTER_RUN_DIR"; } ||
   ! cd -- "$SUBMITTER_RUN_DIR"; then
  submitter_now
  submitter_status failed 1 "$submitter_now" "cannot enter run directory $SUBMITTER_RUN_DIR"
  exit 1
fi
submitter_status running null "" ""
# Inputs that upstream tasks made on this host are linked from where they are, not sent again.
for submitter_link in ${submitter_links[@]+"${submitter_links[@]}"}; do
  if [ -z "${submitter_source:-}" ]; then submitter_source=$submitter_link; continue; fi
  if [ -e "$submitter_link" ] && [ ! -L "$submitter_link" ]; then
    submitter_source=; continue  # sent from here: its makers ran in an earlier apply
  fi
  if [ ! -e "$submitter_source" ]; then
    submitter_now
    submitter_status failed 1 "$submitter_now" "input $submitter_link: the upstream output $submitter_source is not on this host"
    exit 1
  fi
  mkdir -p -- "${submitter_link%/*}" && ln -sfn -- "$submitter_source" "$submitter_link"
  submitter_source=
done
if [ -e "$SUBMITTER_TASK_DIR/.stopped" ]; then rm -f -- "$SUBMITTER_TASK_DIR/.stopped"; fi
printf '%s' "$submitter_command" >"$SUBMITTER_TASK_DIR/command"

submitter_starting=1
# The task's stdout and stderr: its files, opened here, or the wrapper's own where they are.
if [ "$submitter_streams" = given ]; then
  exec 5>&1 6>&2
else
  exec 5>"$SUBMITTER_TASK_DIR/stdout" 6>"$SUBMITTER_TASK_DIR/stderr"
fi
# set -m: the task runs in a process group of its own, so stopping it reaches every process it
# started, and only those. Bash may print a job notice ("[1]+ Done") while job control is on,
# in a subshell of a launcher: kept out of the wrapper's stderr.
{
set -m
(
  if [ -n "${submitter_env[*]-}" ]; then export "${submitter_env[@]}"; fi
  if [ -z "${submitter_in_subshell:-}" ] || [ "${BASH_VERSINFO[0]}" -lt 5 ]; then
    exec "${submitter_interpreter[@]}" "$SUBMITTER_TASK_DIR/command"
  fi
  # A bash command that tells a new bash from this subshell by nothing it uses (its caller
  # decides: this machine's launcher, for a `run` text without $$, $PPID, $0, local, return,
  # ...) runs here, as `bash command` would run it, without a bash to start: no job control,
  # no arguments, no wrapper variable (what the environment has stays), its own clock and
  # random numbers.
  set +m +u --
  SECONDS=0
  RANDOM=$BASHPID
  # A pool's queue (thousands of entries) is left: freeing it here would copy the lane's
  # memory into this fork, 9 ms a task.
  for submitter_name in "${!submitter_@}"; do
    case $submitter_name in submitter_queue_*) continue ;; esac
    [[ ${!submitter_name@a} == *x* ]] || unset -v "$submitter_name"
  done
  unset -v submitter_name
  . "$SUBMITTER_TASK_DIR/command"
) >&5 2>&6 5>&- 6>&- </dev/null 4>&- 9>&- &
submitter_child=$!
set +m
} 2>/dev/null
exec 5>&- 6>&-
# A bash without job control leaves the task in the wrapper's group: signal its pid only.
if kill -0 -- "-$submitter_child" 2>/dev/null; then
  submitter_group=-$submitter_child
else
  submitter_group=$submitter_child
fi
submitter_starting=
if [ "$submitter_watch" = 1 ]; then
  # The watchdog reads a pipe only this wrapper holds open: end of file (the wrapper closed
  # it, ended or was killed) stops it. Each second it looks for a .cancel file (a kill of this
  # task alone) and at the walltime (7200 s). Either one stops the task itself, if the
  # task's command still runs, after marking why in .stopped: the wrapper is not signalled,
  # so its wait for the command is never cut short, and a command that ended meanwhile (a
  # node frozen as it ended wakes with both) is the wrapper's to record as it ended. The
  # walltime is counted in seconds the node ran, a tick each: a node frozen (a paused VM or
  # container) for longer than the walltime does not kill, on the thaw, what it had stopped.
  exec 9> >(
    exec >/dev/null
    ticks=0
    while :; do
      read -r -t 1 _
      [ $? -gt 128 ] || exit 0
      ticks=$((ticks + 1))
      if [ -e "$SUBMITTER_TASK_DIR/.cancel" ]; then
        submitter_why=cancel
      elif [ 7200 -gt 0 ] && [ "$ticks" -ge 7200 ]; then
        submitter_why=walltime
      else
        continue
      fi
      read -r -t 0 _ && exit 0  # the wrapper closed the pipe: the task has ended
      submitter_runs || exit 0
      printf '%s\n' "$submitter_why" >"$SUBMITTER_TASK_DIR/.stopped"
      submitter_stop_task
      exit 0
    done
  )
fi
if [ -n "$submitter_pending" ]; then
  submitter_on_signal "$submitter_pending" "$submitter_pending_signal"
fi
wait "$submitter_child"
submitter_finish "$?"
