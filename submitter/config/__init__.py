"""Loading and validating the tasks and hosts YAML files."""
