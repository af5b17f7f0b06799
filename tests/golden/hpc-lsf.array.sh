#!/bin/bash
#BSUB -J align+2[1-3]
#BSUB -rn
#BSUB -n 4
#BSUB -R "span[hosts=1]"
#BSUB -M 8192MB
#BSUB -R "rusage[mem=8192]"
#BSUB -W 120
#BSUB -q normal
#BSUB -gpu "num=1"
#BSUB -o /scratch/alice/submitter/.groups/g1/%I.out
#BSUB -e /scratch/alice/submitter/.groups/g1/%I.err
#BSUB --comment=golden
# submitter job array g1: 3 tasks (pack lsf@1.2)
# LSF numbers members from 1: member LSB_JOBINDEX runs the task whose directory is line
# LSB_JOBINDEX of the members file (submitter's member 0 is line 1); an empty line is a
# member whose start was given up.
case ${LSB_JOBINDEX:-} in '' | *[!0-9]*) echo "submitter: LSB_JOBINDEX is not set" >&2; exit 1 ;; esac
submitter_dir=$(sed -n "${LSB_JOBINDEX}p" /scratch/alice/submitter/.groups/g1/members)
[ -n "$submitter_dir" ] || exit 0
cd -- "$submitter_dir" || exit 1
exec bash job.sh >job.out 2>job.err
