"""Dagster-free logic, one sub-package per phase of the pipeline; plain functions over plain data.

- :mod:`.mining`: git mirrors, merged changes of a month, patches, repository lists, asv configs;
- :mod:`.github`: the PyGithub client pool, searches split under the result cap, the response cache;
- :mod:`.classification`: the pre-filter, the DSPy programs and the heuristic, judging, the completion cache;
- :mod:`.environments`: install analysis, build scripts, validators, context synthesis, the context registry.

Shared by every phase and kept at this level: :mod:`.contracts` (each stage's columns),
:mod:`.repo_names` (the one ``owner/name`` validator) and :mod:`.sqlite_files` (WAL set-up).
"""
