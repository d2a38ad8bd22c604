"""A stand-in for MLC's `mlc_llm` package, which only MLC's own wheel index ships (unreachable here).

It is not mlc-llm: it records each command line it is given (to $MLC_STAND_IN_LOG) and writes the
files the real commands write, so tests can check how Hearth drives mlc-llm and where the output
lands. Set $MLC_STAND_IN_FAIL to a subcommand name to make that step fail as a real one can.
"""
