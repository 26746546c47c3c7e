"""How every job entry point ends: on an expected failure, one ``Error: ...`` line (the last of its log), no
traceback.

Snakemake shows a failed job's log (``profiles/default``: ``show-failed-logs``); what a user must read there is
the cause, in one line, as the project's own checks word it ("<file>:<line>: ...", "no validation split in
..."). So an exception raised by this project's code for bad input (``ValueError``, a missing or unreadable
file, malformed JSON) prints just its message. Anything else is a bug, or a library's failure: its traceback
is kept, followed by the same one-line ``Error:`` summary, so the last line of every failed job's log says what
happened. ``DRO_REBEL_TRACEBACK=1`` keeps the traceback of expected failures too.
"""
from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Callable

#: Exception types this project raises for bad input (data, files, arguments): worded for the user.
EXPECTED = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError,
            json.JSONDecodeError)
_PACKAGE = str(Path(__file__).resolve().parents[1])


def _raised_here(error: BaseException) -> bool:
    """Whether the innermost frame of the error's traceback is this project's code."""
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and frames[-1].filename.startswith(_PACKAGE)


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if isinstance(error, EXPECTED) and _raised_here(error) else f"{type(error).__name__}: {text}"


def run(main: Callable, *args) -> None:
    """Call ``main(*args)`` and exit with its status; failures end on one ``Error:`` line (module docstring)."""
    try:
        status = main(*args)
    except (SystemExit, KeyboardInterrupt):
        raise
    except Exception as error:          # noqa: BLE001 - the job's last word, whatever failed
        expected = isinstance(error, EXPECTED) and _raised_here(error)
        if not expected or os.environ.get("DRO_REBEL_TRACEBACK") == "1":
            traceback.print_exc()
        sys.stderr.flush()
        print(f"Error: {one_line(error)}", file=sys.stderr, flush=True)
        sys.exit(1)
    sys.exit(status or 0)
