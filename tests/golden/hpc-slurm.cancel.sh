: >/scratch/alice/submitter/t5/.cancel
: >/scratch/alice/submitter/t6/.cancel
scancel 4241 4242 4243_0 4243_1 4245 4246 4247 4248 2>&1
