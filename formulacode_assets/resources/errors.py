"""The error for a setting a newcomer got wrong: one line naming the variable or path, no traceback."""

from dagster import Failure


class SettingsError(Failure, ValueError):
    """Fails the run with its message as the failure's description (no retries: a re-run cannot fix it)."""

    def __init__(self, message: str):
        super().__init__(description=message, allow_retries=False)
