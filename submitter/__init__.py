"""submitter: run declared tasks on local, ssh and batch-scheduled hosts."""

__version__ = "0.1.0"
