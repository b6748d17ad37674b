"""The one exception type the project raises for problems a user can fix."""


class DeclutrConfigError(ValueError):
    """A setting, path or input that cannot work; the message names the problem and the fix."""


class DeclutrRunError(RuntimeError):
    """A run stopped on purpose (bad data, non-finite losses); the message says why and what was saved."""


class DeclutrDataError(DeclutrRunError):
    """The training data went bad beyond the configured tolerance; the message names the files."""


class DeclutrNumericalError(DeclutrRunError):
    """Too many consecutive steps had a non-finite loss or gradient."""
