"""The local state store: tasks, attempts and events in SQLite."""
