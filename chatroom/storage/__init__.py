"""Persistence: the database pool wrapper, the schema, and every SQL statement."""
