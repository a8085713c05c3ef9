"""Exit with a clear message unless this interpreter is Python 3.11 or newer."""

import sys

if sys.version_info < (3, 11):
    found = ".".join(str(part) for part in sys.version_info[:3])
    sys.exit(
        f"Python {found} at {sys.executable} is too old: the course needs 3.11 or newer. "
        "Install Python 3.11 and run again with PYTHON=/path/to/python3.11."
    )
