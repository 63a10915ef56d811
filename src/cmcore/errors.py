"""Exceptions that cmc raises for problems with the user's input.

The command line turns these into a one-line message and a non-zero exit
status, never a traceback.  Both derive from the built-in exception a Python
user would expect (``ValueError`` for bad values, ``OSError`` for bad files),
so ``except ValueError`` keeps working.
"""
from __future__ import annotations


class CmcError(Exception):
    """Base class of the errors cmc reports to its users in one line."""


class InputError(CmcError, ValueError):
    """An argument or a value in an input file is not acceptable."""


class FileFormatError(CmcError, OSError):
    """A file is missing, unreadable, truncated or of an unknown flavour."""
