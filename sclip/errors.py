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
    if isinstance(error, OSError) and error.strerror:  # args[0] is the errno ("error: 2")
        message = f'{error.filename}: {error.strerror}' if error.filename else error.strerror
    else:
        message = str(error.args[0]) if error.args else str(error)
    lines = _REGISTRY_PREFIX.sub('', message).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def load_failure_reason(error: BaseException) -> str:
    """Why ``torch.load`` refused a file, in one line, never advising to turn its safe
    unpickling off (which would run the file's pickled code)."""
    text = str(error).strip()
    if 'weights only load failed' in text.lower() or 'weights_only' in text or type(error).__name__ == 'UnpicklingError':
        return 'it holds pickled objects other than tensors, which are not loaded for safety'
    return text.splitlines()[0] if text else type(error).__name__
