#!/bin/bash
#PBS --comment=golden
#PBS -N align-hpc-pbspr
#PBS -l select=1:ncpus=4:mem=8192MB:ngpus=1
#PBS -l walltime=02:00:00
#PBS -q normal
#PBS -o /scratch/alice/submitter/316d9d4db330d3fa/job.out
#PBS -e /scratch/alice/submitter/316d9d4db330d3fa/job.err
# submitter task 316d9d4db330d3fa (pack pbs@1.0)
# --- submitter job wrapper (bash + coreutils only) ---
set -u
SUBMITTER_TASK_ID=316d9d4db330d3fa
SUBMITTER_TASK_NAME=align-hpc-pbspro
SUBMITTER_TASK_DIR=/scratch/alice/submitter/316d9d4db330d3fa
SUBMITTER_RUN_DIR=/scratch/alice/submitter/316d9d4db330d3fa
case $SUBMITTER_TASK_DIR in "~/"*) SUBMITTER_TASK_DIR=$HOME/${SUBMITTER_TASK_DIR#"~/"} ;; esac
case $SUBMITTER_RUN_DIR in "~/"*) SUBMITTER_RUN_DIR=$HOME/${SUBMITTER_RUN_DIR#"~/"} ;; esac
export SUBMITTER_TASK_ID SUBMITTER_TASK_NAME SUBMITTER_TASK_DIR SUBMITTER_RUN_DIR
submitter_outputs=( results/hpc-pbspro.bam )
submitter_child=
submitter_start=$(date -u +%Y-%m-%dT%H:%M:%SZ)

submitter_json() {
  local text=$1
  text=${text//\\/\\\\}
  text=${text//\"/\\\"}
  text=${text//$'\n'/\\n}
  text=${text//$'\r'/\\r}
  text=${text//$'\t'/\\t}
  printf '"%s"' "$text"
}

# status <state> <exit code or null> <end time or ""> <reason>; written to a temporary file
# and renamed, so a reader never sees half a status.
submitter_status() {
  local tmp="$SUBMITTER_TASK_DIR/.status.$$"
  {
    printf '{"state": %s, "exit_code": %s, ' "$(submitter_json "$1")" "$2"
    printf '"hostname": %s, "pid": %s, ' "$(submitter_json "$(uname -n)")" "$$"
    printf '"job_id": %s, ' "$(submitter_json "${SLURM_JOB_ID:-${PBS_JOBID:-${LSB_JOBID:-}}}")"
    printf '"start": %s, "end": %s, ' "$(submitter_json "$submitter_start")" "$(submitter_json "$3")"
    printf '"reason": %s}\n' "$(submitter_json "$4")"
  } >"$tmp" && mv -f "$tmp" "$SUBMITTER_TASK_DIR/status"
}

submitter_on_signal() {
  trap '' TERM INT
  if [ -n "$submitter_child" ]; then
    kill -TERM "$submitter_child" 2>/dev/null
    wait "$submitter_child" 2>/dev/null
  fi
  if [ -f "$SUBMITTER_TASK_DIR/.walltime" ]; then
    submitter_status failed "$1" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "walltime exceeded: killed after 02:00:00 by the wrapper"
  else
    submitter_status killed "$1" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "killed by SIG$2"
  fi
  exit "$1"
}
trap 'submitter_on_signal 143 TERM' TERM
trap 'submitter_on_signal 130 INT' INT

if ! mkdir -p -- "$SUBMITTER_RUN_DIR" || ! cd -- "$SUBMITTER_RUN_DIR"; then
  submitter_status failed 1 "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "cannot enter run directory $SUBMITTER_RUN_DIR"
  exit 1
fi
submitter_status running null "" ""
rm -f -- "$SUBMITTER_TASK_DIR/.walltime"
submitter_watchdog=
printf '%s' 'mkdir -p results
echo aligned > results/hpc-pbspro.bam
' >"$SUBMITTER_TASK_DIR/command"

(
  export OMP_NUM_THREADS=4
  exec bash "$SUBMITTER_TASK_DIR/command"
) >"$SUBMITTER_TASK_DIR/stdout" 2>"$SUBMITTER_TASK_DIR/stderr" </dev/null &
submitter_child=$!
wait "$submitter_child"
submitter_rc=$?
submitter_child=
if [ -n "$submitter_watchdog" ]; then kill "$submitter_watchdog" 2>/dev/null; fi

submitter_end=$(date -u +%Y-%m-%dT%H:%M:%SZ)
if [ "$submitter_rc" -ne 0 ]; then
  submitter_status failed "$submitter_rc" "$submitter_end" "exit code $submitter_rc"
  exit "$submitter_rc"
fi
submitter_missing=
for submitter_output in ${submitter_outputs[@]+"${submitter_outputs[@]}"}; do
  if [ ! -e "$submitter_output" ]; then
    submitter_missing="$submitter_missing${submitter_missing:+, }$submitter_output"
  fi
done
if [ -n "$submitter_missing" ]; then
  submitter_status failed 0 "$submitter_end" "missing declared output: $submitter_missing"
  exit 1
fi
submitter_status completed 0 "$submitter_end" ""
exit 0
