"""One exception type for every input problem a user can fix.

Why: tools catch ``SCLIPError`` and print its message as one line (no traceback), so each
message must name the file, key or value at fault and say how to fix it.
"""
import re


class SCLIPError(ValueError):
    """A user-fixable problem: bad path, bad checkpoint, bad class names, bad config value."""


# mmengine's registry re-raises build errors as ``type(e)(f"class `X` in module: {e}")``.
_REGISTRY_PREFIX = re.compile(r'^(class `[^`]+` in [\w.]+: )+')


def one_line(error: BaseException) -> str:
    """The user-facing message of ``error``, without mmengine's registry prefix."""
    message = str(error.args[0]) if error.args else str(error)
    return _REGISTRY_PREFIX.sub('', message).strip().splitlines()[0]
