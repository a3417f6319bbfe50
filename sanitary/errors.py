"""The one exception type the CLI turns into a one-line message and a non-zero exit."""


class SanitaryError(Exception):
    """A problem with the user's input or environment, explained in one line that names the fix."""


class OutOfMemoryError(SanitaryError):
    """A model could not get the memory it needed: says which, and the setting that lowers it."""
