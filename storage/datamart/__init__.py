"""The DuckDB datamart: star schema, partition files, the bulk load (see schema.py)."""
