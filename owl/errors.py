"""The small exception hierarchy of owl.

Every message says what was wrong, where, and (when it helps) what to do.
"""


class OwlError(Exception):
    """Base of every error owl raises on purpose."""


class ConfigError(OwlError):
    """Bad settings: an unreachable Redis URL, an unusable OWL_HOME, a bad option."""


class UnreachableError(ConfigError):
    """The Redis server does not answer (down, stopped, partitioned): it may come back."""


class TemplateError(OwlError):
    """A template file is invalid; the message names file:line and the path inside it."""


class BoardError(OwlError):
    """The blackboard refused an operation (unknown dataset, wrong state, bad board)."""


class TaskError(OwlError):
    """A task could not be loaded or run (bad `module:function`, bad argv)."""


class PermanentError(OwlError):
    """Raised by a task when no attempt can succeed (corrupt or truncated input, a missing
    header keyword): the item goes dead at once, with failure class ``permanent``, instead
    of being retried. Task code may import it (``from owl.errors import PermanentError``);
    this module imports nothing of the engine."""


class CalibError(PermanentError):
    """Calibration input is unusable: corrupt FITS, missing keyword, wrong shape."""
