"""Running commands and moving files on a host: this machine, or one reached by ssh."""
