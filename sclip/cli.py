"""Command-line plumbing shared by ``tools/``: one-line errors instead of tracebacks."""
import sys

from .errors import SCLIPError, one_line

# Errors from data loading come wrapped by DataLoader workers; these name the file.
_IMAGE_ERROR = 'failed to load image: '
_LABEL_ERROR = "'NoneType' object has no attribute 'squeeze'"


def describe(error: BaseException) -> str:
    """One line for a user-facing failure, or '' when it is a bug (keep the traceback)."""
    message = one_line(error) if not str(error).startswith('Caught') else _worker_message(error)
    if isinstance(error, SCLIPError) or type(error).__name__ == 'SCLIPError':
        return message
    if _IMAGE_ERROR in str(error):
        path = str(error).rsplit(_IMAGE_ERROR, 1)[1].strip().splitlines()[0]  # last: the message, not the source line
        return f'{path}: cannot be read as an image (corrupt or not an image); replace it or ' \
               'remove it from the split (tools/check_data.py lists every such file).'
    if _LABEL_ERROR in str(error) or 'UnidentifiedImageError' in f'{type(error).__name__} {error}':
        # mmseg's LoadAnnotations decodes labels from bytes, so the error cannot name the file
        return 'a label file could not be decoded (corrupt or not an image); run ' \
               'tools/check_data.py with this config to find it.'
    if 'weights only load failed' in str(error).lower() or type(error).__name__ == 'UnpicklingError':
        from .errors import load_failure_reason  # never relay torch's advice to unpickle the file's code
        return f'a checkpoint could not be loaded: {load_failure_reason(error)}; pass a file of tensors.'
    if isinstance(error, FileNotFoundError):
        return f'{message}; check the paths in the config or --cfg-options.'
    return ''


def _worker_message(error: BaseException) -> str:
    """The original exception line of an error re-raised from a DataLoader worker."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    last = lines[-1] if lines else str(error)
    return last.split(': ', 1)[1] if ': ' in last and last.split(': ', 1)[0].replace('.', '').isidentifier() else last


def main_guard(main) -> None:
    """Run ``main``; print user-fixable errors as ``error: ...`` and exit 2."""
    try:
        main()
    except KeyboardInterrupt:
        print('interrupted', file=sys.stderr)
        sys.exit(130)
    except Exception as error:  # noqa: BLE001 - decide below whether it is the user's to fix
        message = describe(error)
        if not message:
            raise
        print(f'error: {message}', file=sys.stderr)
        sys.exit(2)


def resolve_device(name):
    """``--device``: a torch device that exists here (default: cuda when available), or one line."""
    import torch
    name = name or ('cuda' if torch.cuda.is_available() else 'cpu')
    if name.startswith('cuda') and not torch.cuda.is_available():
        raise SCLIPError(f'--device {name}: no CUDA GPU is available here; use --device cpu.')
    try:
        return torch.device(name)
    except RuntimeError:
        raise SCLIPError(f'--device {name!r} is not a device; use cuda or cpu.') from None
