"""Runs on disk: run directories (``run.json``, ``iterates.parquet``), their locks, and reading them back."""
