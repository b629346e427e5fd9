"""Errors that the CLI reports as one line and exit code 2 (no traceback)."""


class BitfabError(Exception):
    """A user-facing error: bad input, unsupported op, missing data, a design that does not fit.

    The message must be one line naming the thing (file, node, layer, parameter) and the fix.
    """
