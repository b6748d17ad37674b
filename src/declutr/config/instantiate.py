"""``hydra.utils.instantiate`` that lets our own configuration errors through unwrapped."""

from hydra.errors import InstantiationException
from hydra.utils import instantiate

from declutr.errors import DeclutrConfigError


def build(node, **kwargs):
    """Instantiate a config node; a :class:`DeclutrConfigError` raised inside surfaces as itself, so the
    user reads our message (which names the key and the fix) rather than Hydra's wrapper."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        while cause is not None and not isinstance(cause, DeclutrConfigError):
            cause = cause.__cause__
        if cause is None:
            raise
        raise cause from None
