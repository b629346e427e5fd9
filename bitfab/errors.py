"""Errors that the CLI reports as one line and exit code 2 (no traceback)."""


class BitfabError(Exception):
    """A user-facing error: bad input, unsupported op, missing data, a design that does not fit.

    The message must be one line naming the thing (file, node, layer, parameter) and the fix.
    """


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread by the CLI's handler so that it unwinds like Ctrl-C:
    staged outputs are removed and tool process groups ended (exit code 143)."""
