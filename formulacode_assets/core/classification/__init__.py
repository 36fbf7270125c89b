"""Classification: which changes improve performance (pre-filter, DSPy programs or heuristic, completion cache)."""
