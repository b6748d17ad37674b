"""The one exception type the project raises for problems a user can fix."""


class DeclutrConfigError(ValueError):
    """A setting, path or input that cannot work; the message names the problem and the fix."""


class DeclutrRunError(RuntimeError):
    """A run stopped on purpose (bad data, non-finite losses); the message says why and what was saved."""


class DeclutrDataError(DeclutrRunError):
    """The training data went bad beyond the configured tolerance; the message names the files."""


class DeclutrNumericalError(DeclutrRunError):
    """Too many consecutive steps had a non-finite loss or gradient."""


class DeclutrInterrupted(BaseException):
    """A run stopped by a signal (Ctrl+C: SIGINT, a scheduler or ``kill``: SIGTERM). Not an ``Exception``, so code
    that records failures and goes on (a sweep's next job) lets it through: an interrupt stops the whole sweep.
    ``step`` is the step reached and ``checkpoint`` the file to resume from, when known."""

    EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}  # 128 + the signal's number, as a shell reports them

    def __init__(self, signal_name: str, step: int | None = None, checkpoint: str | None = None) -> None:
        super().__init__(signal_name)
        self.signal_name, self.step, self.checkpoint = signal_name, step, checkpoint

    @property
    def exit_code(self) -> int:
        return self.EXIT_CODES.get(self.signal_name, 1)

    def __str__(self) -> str:
        where = f" at step {self.step}" if self.step is not None else ""
        resume = f"; resume with ckpt_path={self.checkpoint}" if self.checkpoint else ""
        return f"interrupted by {self.signal_name}{where}{resume}"
