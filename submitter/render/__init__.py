"""Template packs and the pure rendering of task files and job scripts."""
