#!/bin/bash
#$ -N align+2
#$ -S /bin/bash
#$ -cwd
#$ -r n
#$ -pe smp 4
#$ -l h_rt=02:00:00
#$ -l h_vmem=2048M
#$ -l gpu=1
#$ -q normal
#$ -o /scratch/alice/submitter/.groups/g1/$TASK_ID.out
#$ -e /scratch/alice/submitter/.groups/g1/$TASK_ID.err
#$ --comment=golden
#$ -t 1-3
# submitter job array g1: 3 tasks (pack sge@1.0)
# Grid Engine numbers tasks from 1: task SGE_TASK_ID runs the task whose directory is line
# SGE_TASK_ID of the members file (submitter's member 0 is line 1); an empty line is a
# member whose start was given up.
case ${SGE_TASK_ID:-} in '' | *[!0-9]*) echo "submitter: SGE_TASK_ID is not set" >&2; exit 1 ;; esac
submitter_dir=$(sed -n "${SGE_TASK_ID}p" /scratch/alice/submitter/.groups/g1/members)
[ -n "$submitter_dir" ] || exit 0
cd -- "$submitter_dir" || exit 1
exec bash job.sh >job.out 2>job.err
