"""The annotation store: one database (SQLite in the annotation folder, or PostgreSQL) for work queues, claims,
every saved version, reviews and the photos saved one at a time."""
