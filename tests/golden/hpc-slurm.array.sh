#!/bin/bash
#SBATCH --job-name=align+2
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --no-requeue
#SBATCH --cpus-per-task=4
#SBATCH --mem=8192M
#SBATCH --time=02:00:00
#SBATCH --partition=normal
#SBATCH --account=proj123
#SBATCH --gpus=1
#SBATCH --output=/scratch/alice/submitter/.groups/g1/%a.out
#SBATCH --error=/scratch/alice/submitter/.groups/g1/%a.err
#SBATCH --comment=golden
#SBATCH --array=0-2
# submitter job array g1: 3 tasks (pack slurm@1.2)
# Element i runs the task whose directory is line i+1 of the members file; an empty line is a
# member whose start was given up.
case ${SLURM_ARRAY_TASK_ID:-} in '' | *[!0-9]*) echo "submitter: SLURM_ARRAY_TASK_ID is not set" >&2; exit 1 ;; esac
submitter_dir=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" /scratch/alice/submitter/.groups/g1/members)
[ -n "$submitter_dir" ] || exit 0
cd -- "$submitter_dir" || exit 1
exec bash job.sh >job.out 2>job.err
