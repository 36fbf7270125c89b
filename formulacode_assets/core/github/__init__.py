"""GitHub as a source: the PyGithub client pool, searches split under the 1,000 cap, and cached responses."""
