rm -rf -- /scratch/alice/submitter/t1 /scratch/alice/submitter/t2 /scratch/alice/submitter/t3 /scratch/alice/submitter/t4 /scratch/alice/submitter/t5 /scratch/alice/submitter/t6 /scratch/alice/submitter/t7

submitter_purge_groups() {
  local group dir left
  # a pool job's mark that it is over matters while the job may come back: a week at most
  if [ -d "$1/.groups/.over" ]; then
    find "$1/.groups/.over" -type f -mmin +10080 -delete 2>/dev/null
  fi
  for group in "$1"/.groups/*/; do
    [ -f "$group/members" ] || continue
    left=
    while IFS= read -r dir; do
      if [ -n "$dir" ] && [ -e "$dir" ]; then left=1; break; fi
    done <"$group/members"
    [ -n "$left" ] || rm -rf -- "$group"
  done
  return 0
}
submitter_purge_groups /scratch/alice/submitter
