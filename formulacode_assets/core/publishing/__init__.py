"""Publishing: one image per validated context, pushed to a registry; the task table and its dataset."""
