"""Services with explicit set-up: experiment tracking, lineage."""
