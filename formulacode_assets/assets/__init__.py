"""Thin Dagster wiring, one module per stage."""
