#!/bin/bash
#PBS --comment=golden
#PBS -N align+2
#PBS -r n
#PBS -l select=1:ncpus=8:mem=16384MB:ngpus=1
#PBS -l walltime=04:00:00
#PBS -q normal
#PBS -o /scratch/alice/submitter/.groups/g1/job.out
#PBS -e /scratch/alice/submitter/.groups/g1/job.err
# submitter packed job g1: 3 tasks, 2 at a time (pack pbs@1.4)
# --- submitter packed job: runs the tasks listed in the members file, a few at a time ---
# Each member is an ordinary task wrapper (job.sh in its task directory). With
# SUBMITTER_PACKED=1 the wrapper itself enforces the task's walltime (02:00:00)
# and stops its task alone when a .cancel file appears in its directory.
export SUBMITTER_PACKED=1
submitter_width=2
submitter_running=0
submitter_stopping=
# The job being ended (cancelled, or at its time limit): start no more members; the running
# ones are signalled by the scheduler and write their own status.
trap 'submitter_stopping=1' TERM INT HUP

submitter_skip() {
  local tmp="$1/.status.$$"
  printf '{"state": "killed", "exit_code": null, "hostname": "%s", "start": "", "end": "%s", "reason": "killed by the user before it started"}\n' \
    "$(uname -n)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$tmp" && mv -f -- "$tmp" "$1/status"
}

while IFS= read -r submitter_dir; do
  [ -z "$submitter_stopping" ] || break
  # an empty line: a member whose start was given up
  [ -n "$submitter_dir" ] || continue
  while [ "$submitter_running" -ge "$submitter_width" ] && [ -z "$submitter_stopping" ]; do
    wait -n
    [ -n "$submitter_stopping" ] || submitter_running=$((submitter_running - 1))
  done
  [ -z "$submitter_stopping" ] || break
  if [ -e "$submitter_dir/.cancel" ]; then
    submitter_skip "$submitter_dir"
    continue
  fi
  (cd -- "$submitter_dir" && exec bash job.sh >job.out 2>job.err) &
  submitter_running=$((submitter_running + 1))
done </scratch/alice/submitter/.groups/g1/members
while [ -n "$(jobs -rp)" ]; do wait; done
# The job fails when one of its tasks did not complete, as the scheduler's accounting then
# shows; each task's own status stands whatever the job's is (tasks chained after it wait for
# its end and check their own upstream tasks).
submitter_failed=0
while IFS= read -r submitter_dir; do
  [ -n "$submitter_dir" ] || continue
  submitter_line=
  read -r submitter_line <"$submitter_dir/status" 2>/dev/null
  case $submitter_line in *'"state": "completed"'*) ;; *) submitter_failed=1 ;; esac
done </scratch/alice/submitter/.groups/g1/members
exit "$submitter_failed"
