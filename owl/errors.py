"""The small exception hierarchy of owl.

Every message says what was wrong, where, and (when it helps) what to do.
"""


class OwlError(Exception):
    """Base of every error owl raises on purpose."""


class ConfigError(OwlError):
    """Bad settings: an unreachable Redis URL, an unusable OWL_HOME, a bad option."""


class TemplateError(OwlError):
    """A template file is invalid; the message names file:line and the path inside it."""


class BoardError(OwlError):
    """The blackboard refused an operation (unknown dataset, wrong state, bad board)."""


class TaskError(OwlError):
    """A task could not be loaded or run (bad `module:function`, bad argv)."""


class CalibError(OwlError):
    """Calibration input is unusable: corrupt FITS, missing keyword, wrong shape."""
