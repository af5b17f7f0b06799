#!/bin/bash
#PBS --comment=golden
#PBS -N align+2
#PBS -r y
#PBS -l select=1:ncpus=4:mem=8192MB:ngpus=1
#PBS -l walltime=02:00:00
#PBS -q normal
#PBS -o /scratch/alice/submitter/.groups/g1/array.out
#PBS -e /scratch/alice/submitter/.groups/g1/array.err
#PBS -J 0-2
# submitter job array g1: 3 tasks (pack pbs@1.4)
# Member i runs the task whose directory is line i+1 of the members file; an empty line is a
# member whose start was given up. PBS Pro sets PBS_ARRAY_INDEX, Torque PBS_ARRAYID, and
# SLURM's Torque wrapper (slurm-wlm-torque) only SLURM_ARRAY_TASK_ID.
submitter_index=${PBS_ARRAY_INDEX:-${PBS_ARRAYID:-${SLURM_ARRAY_TASK_ID:-}}}
case $submitter_index in '' | *[!0-9]*) echo "submitter: no array index in the environment" >&2; exit 1 ;; esac
submitter_dir=$(sed -n "$((submitter_index + 1))p" /scratch/alice/submitter/.groups/g1/members)
[ -n "$submitter_dir" ] || exit 0
cd -- "$submitter_dir" || exit 1
# PBS Pro refuses arrays that may not be rerun; a member it runs again (after a node failure)
# does not run its task a second time: retries are submitter's decision.
if ! (set -C && : >".ran-$PBS_JOBID") 2>/dev/null; then
  echo "submitter: $PBS_JOBID ran here before: not run again" >&2; exit 0
fi
exec bash job.sh >job.out 2>job.err
