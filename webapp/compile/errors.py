"""The one exception Hearth's compiler raises for problems a person can act on."""


class CompileError(Exception):
    """A compile step failed; the message says what is wrong, what to do, and where."""
