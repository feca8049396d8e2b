"""The marker of a user's mistake: errors the package raises for bad input (a config value, a data file, a
checkpoint) subclass ``UserError`` as well as the built-in error they always were, so callers that catch
``ValueError`` / ``FileNotFoundError`` keep working and the tools can print them as one line, without a traceback.
"""


class UserError(Exception):
    """Bad input from the user (config, data, checkpoint, command line): its message says what and what is valid."""


class ConfigError(UserError, ValueError):
    """A config value that cannot work."""


class DataError(UserError, ValueError):
    """A dataset file or its content."""


class CheckpointError(UserError, ValueError):
    """A checkpoint file: unreadable, of another model, or not fitting the config."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the config or the command line names does not exist."""


class ConfigTypeError(UserError, TypeError):
    """A config value of the wrong type."""
