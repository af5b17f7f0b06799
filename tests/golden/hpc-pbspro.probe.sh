#!/bin/bash
#PBS -N submitter-probe
#PBS -r n
#PBS -l select=1:ncpus=1
#PBS -l walltime=00:10:00
#PBS -o /home/alice/.submitter-probe-t0k/job.out
#PBS -e /home/alice/.submitter-probe-t0k/job.err
submitter_probe=/home/alice/.submitter-probe-t0k
submitter_token=t0k
submitter_scratch=.submitter-node-t0k.$$
submitter_setup=('module load x')
submitter_checks() {
  submitter_dir workdir /scratch/alice/submitter /scratch/alice/submitter/.submitter-node-t0k
  submitter_dir path:0 /scratch/alice/proj /scratch/alice/proj/.submitter-node-t0k
  submitter_dir shared:0 /data ''
  true
}
submitter_interpreters() {
  submitter_found interp:0 python3
  true
}
submitter_started=$(date +%s)
submitter_dir() {
  local state=ok
  if [ ! -d "$2" ]; then state=missing
  elif [ -n "$3" ] && [ "$(cat -- "$3" 2>/dev/null)" != "$submitter_token" ]; then state=different
  elif ! { : >"$2/$submitter_scratch" && rm -f -- "$2/$submitter_scratch"; } 2>/dev/null; then
    state=readonly
  fi
  printf 'CHECK\t%s\t%s\t%s\n' "$1" "$state" "$2"
}
submitter_found() {
  local found
  if found=$(command -v -- "$2" 2>/dev/null); then
    printf 'CHECK\t%s\tok\t%s\n' "$1" "$found"
  else
    printf 'CHECK\t%s\tmissing\t%s\n' "$1" "$2"
  fi
}
{
  printf 'NODE\t%s\n' "$(hostname 2>/dev/null || uname -n)"
  printf 'STARTED\t%s\n' "$submitter_started"
  submitter_checks
  # Setup lines run in this shell, as the wrapper runs them, so what they change (PATH,
  # modules) is what the interpreter checks see. A construct spanning lines runs as one.
  submitter_chunk= submitter_first=1 submitter_n=0
  for submitter_line in "${submitter_setup[@]}"; do
    submitter_n=$((submitter_n + 1))
    submitter_chunk+="$submitter_line"$'\n'
    if bash -n <<<"$submitter_chunk" 2>/dev/null || [ "$submitter_n" -eq "${#submitter_setup[@]}" ]; then
      eval "$submitter_chunk" >"$submitter_probe/setup.out" 2>&1 </dev/null
      submitter_rc=$?
      printf 'CHECK\tsetup:%s-%s\t%s\t%s\n' "$submitter_first" "$submitter_n" "$submitter_rc" \
        "$(tail -n 3 "$submitter_probe/setup.out" | tr '\n\t' '  ')"
      submitter_chunk= submitter_first=$((submitter_n + 1))
    fi
  done
  submitter_interpreters
} >"$submitter_probe/report.tmp" 2>/dev/null
mv -f -- "$submitter_probe/report.tmp" "$submitter_probe/report"
