"""How the scripts in ``tools/`` end on an error: a user's mistake (``errors.UserError``: a config value, a data file,
a checkpoint) as one line without a traceback, anything else (a bug) with its full traceback.

The line is the one a traceback ends in (``convnext_dense.utils.errors.CheckpointError: checkpoint x.pth: ...``), so
mmdet's / mmseg's own tools, which print the traceback of every error, end in the same line: a ``UserError``'s
message is one line (but ``tools/infer.py``'s list of bad inputs, one per line, which that tool prints itself).
``CONVNEXT_DENSE_TRACEBACK=1`` shows the traceback of a user's mistake too.
"""
import os
import sys
import traceback
from typing import Callable

from .errors import UserError

TRACEBACK_VARIABLE = 'CONVNEXT_DENSE_TRACEBACK'  # set to 1 to see the traceback of a user's mistake
EXIT_CODE = 2  # argparse's code for a usage error: the command line or what it names is wrong


def one_line(error: BaseException) -> str:
    """The last line of ``error``'s traceback: its qualified class and its message."""
    return traceback.format_exception_only(type(error), error)[-1].rstrip('\n')


def run_tool(main: Callable[[], None]) -> None:
    """Run a tool's ``main``; a ``UserError`` ends it with ``one_line`` on stderr and exit code 2, no traceback
    (unless ``CONVNEXT_DENSE_TRACEBACK`` is set to anything but 0)."""
    try:
        main()
    except UserError as error:
        if os.environ.get(TRACEBACK_VARIABLE, '0') not in ('', '0'):
            raise
        print(one_line(error), file=sys.stderr)
        sys.exit(EXIT_CODE)
