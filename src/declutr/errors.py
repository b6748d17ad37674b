"""The one exception type the project raises for problems a user can fix."""


class DeclutrConfigError(ValueError):
    """A setting, path or input that cannot work; the message names the problem and the fix."""
