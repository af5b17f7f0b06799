#!/bin/bash
#SBATCH --job-name=align+2
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --no-requeue
#SBATCH --cpus-per-task=8
#SBATCH --mem=16384M
#SBATCH --time=04:00:00
#SBATCH --partition=normal
#SBATCH --account=proj123
#SBATCH --gpus=1
#SBATCH --output=/scratch/alice/submitter/.groups/g1/job.out
#SBATCH --error=/scratch/alice/submitter/.groups/g1/job.err
#SBATCH --comment=golden
# submitter pool job g1: a pool of 3 tasks, 2 at a time in each of its jobs (pack slurm@1.2)
# --- submitter pool job: takes its members from the pool's queue as long as its time allows ---
# The members file is the queue of a pool that several jobs share. Each of this job's
# 2 lanes takes the next member no job took yet, runs it, and goes on while
# what is left of the job's time covers a member's walltime (02:00:00):
# how much a job does is decided by how long its members really run. A job that starts when
# nothing is left ends at once. Each member runs in the pool's one task wrapper, given that
# member's own values (line i of the params file, for line i of the members file): a task
# leaves no script of its own on the host. With SUBMITTER_PACKED=1 the wrapper itself enforces
# the task's walltime and stops its task alone when a .cancel file appears in its directory.
export SUBMITTER_PACKED=1
submitter_width=2
submitter_needs=7200
# The last second a member may start at: the job's walltime less the driver's slack.
submitter_deadline=$((SECONDS + 14400 - 60))
submitter_job="${SLURM_JOB_ID:-}"
submitter_hint=/scratch/alice/submitter/.groups/g1/next
# This job's mark that it is over for the client (a node failure, say): no lane takes a
# member once it is there. A job whose node failed and then came back runs on until the
# scheduler ends it, while its members are started again elsewhere.
submitter_over=/scratch/alice/submitter/.groups/.over/"${submitter_job//\//_}"
submitter_stopping=
mapfile -t submitter_queue_dirs </scratch/alice/submitter/.groups/g1/members
mapfile -t submitter_queue_params <''
. ''
submitter_count=${#submitter_queue_dirs[@]}
# The job being ended (cancelled, or at its time limit): no lane takes another member; the
# running ones are signalled by the scheduler and write their own status.
trap 'submitter_stopping=1' TERM INT HUP

# claim <task dir>: this job takes the member, and only one job ever does: the exclusive
# creation (noclobber: O_EXCL) of its status file, saying which job runs it. The member's
# wrapper then writes its own status over it.
submitter_claim() {
  local won=0
  set -C
  { printf '{"state": "running", "job_id": "%s", "reason": "claimed"}\n' "$submitter_job" \
      >"$1/status"; } 2>/dev/null || won=1
  set +C
  return "$won"
}

submitter_skip() {
  local tmp="$1/.status.$BASHPID"
  printf '{"state": "killed", "exit_code": null, "hostname": "%s", "job_id": "%s", "start": "", "end": "%s", "reason": "killed by the user before it started"}\n' \
    "$(uname -n)" "$submitter_job" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$tmp" && mv -f -- "$tmp" "$1/status"
}

# next: the next member this lane takes, into submitter_dir (empty: none left). The hint (the
# place after the last member taken, shared by every lane of every job, read without a
# lock) only skips what is surely taken; the claim is the truth.
submitter_next() {
  local hint=
  submitter_dir=
  [ ! -e "$submitter_over" ] || return 0
  read -r hint 2>/dev/null <"$submitter_hint"
  case $hint in '' | *[!0-9]*) ;; *) [ "$hint" -le "$submitter_index" ] || submitter_index=$hint ;; esac
  while [ "$submitter_index" -lt "$submitter_count" ]; do
    submitter_dir=${submitter_queue_dirs[submitter_index]}
    submitter_param=${submitter_queue_params[submitter_index]-}
    submitter_index=$((submitter_index + 1))
    if [ -n "$submitter_dir" ] && [ ! -e "$submitter_dir/status" ] &&
       submitter_claim "$submitter_dir"; then
      printf '%s\n' "$submitter_index" >"$submitter_hint"
      return 0
    fi
  done
  submitter_dir=
}

# lane <number>: runs members one after another; fails when one of them did not complete.
# Each member's logs end in the lane's log file (the wrapper's archive_logs), whose name says
# which job and lane wrote it, open on descriptor 4; the wrapper's own output goes to the
# lane's .out/.err files, emptied for each member. The log files of the members whose logs
# went into the lane's file are removed a hundred at a time (a process each time, not each
# member), and at the lane's end.
submitter_lane() {
  local submitter_lane_failed=0 submitter_line submitter_litter=()
  submitter_index=0
  export SUBMITTER_LANE_LOGS=/scratch/alice/submitter/.groups/g1"/lane.${submitter_job//\//_}.$$.$1"
  export SUBMITTER_LANE_WRAPPER="$SUBMITTER_LANE_LOGS.wrapper"
  : >"$SUBMITTER_LANE_LOGS"
  exec 4>>"$SUBMITTER_LANE_LOGS"
  trap 'submitter_stopping=1' TERM INT HUP
  while [ -z "$submitter_stopping" ] && [ $((SECONDS + submitter_needs)) -le "$submitter_deadline" ]; do
    submitter_next
    [ -n "$submitter_dir" ] || break
    if [ -e "$submitter_dir/.cancel" ]; then
      submitter_skip "$submitter_dir"
      continue
    fi
    (cd -- "$submitter_dir" && submitter_member "$submitter_param") >"$SUBMITTER_LANE_WRAPPER.out" 2>"$SUBMITTER_LANE_WRAPPER.err"
    submitter_line=
    read -r submitter_line <"$submitter_dir/status" 2>/dev/null
    case $submitter_line in *'"state": "completed"'*) ;; *) submitter_lane_failed=1 ;; esac
    case $submitter_line in
      *'"logs": ['*)
        submitter_litter+=("$submitter_dir/stdout" "$submitter_dir/stderr" "$submitter_dir/command")
        if [ "${#submitter_litter[@]}" -ge 300 ]; then rm -f -- "${submitter_litter[@]}"; submitter_litter=(); fi ;;
    esac
  done
  if [ "${#submitter_litter[@]}" -gt 0 ]; then rm -f -- "${submitter_litter[@]}"; fi
  return "$submitter_lane_failed"
}

submitter_lanes=()
for ((submitter_i = 0; submitter_i < submitter_width; submitter_i++)); do
  submitter_lane "$submitter_i" &
  submitter_lanes+=("$!")
done
# The job fails when one of the tasks it ran did not complete, as the scheduler's accounting
# then shows; each task's own status stands whatever the job's is.
submitter_failed=0
for submitter_pid in "${submitter_lanes[@]}"; do
  while :; do
    wait "$submitter_pid"
    submitter_rc=$?
    # a signal cut the wait short: the lane goes on to its member's end
    if [ "$submitter_rc" -gt 128 ] && kill -0 "$submitter_pid" 2>/dev/null; then continue; fi
    break
  done
  [ "$submitter_rc" -eq 0 ] || submitter_failed=1
done
exit "$submitter_failed"
