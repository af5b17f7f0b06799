: >/scratch/alice/submitter/t5/.cancel
: >/scratch/alice/submitter/t6/.cancel
qdel 4241 4242 4243.1 4243.2 4245 4246 4247 4248 2>&1
