"""Not the package: the package is ``sclip/`` below. This file is here for one situation.

``git clone`` names this folder ``sclip``. Python started in the folder that holds the clone
(``python -c "import sclip"``) looks in the current folder first; without this file it would
import the clone itself as an empty namespace package ``sclip`` (the editable install's finder
comes after the current folder), and the first ``from mmseg.apis import ...`` would fail inside
mmcv. With this file, importing the clone hands over to the installed package (wherever it
is), or to ``sclip/`` here when nothing is installed: ``import sclip`` is the real package
wherever Python is started.
"""
import importlib.machinery as _machinery
import importlib.util as _util
import os as _os
import sys as _sys


def _real_package_spec():
    """The spec of ``sclip`` as Python would find it without the folder holding this clone."""
    here = _os.path.dirname(_os.path.abspath(__file__))
    holder = _os.path.dirname(here)
    search = [entry for entry in _sys.path if _os.path.abspath(entry or _os.getcwd()) != holder]
    for finder in _sys.meta_path:
        find = getattr(finder, 'find_spec', None)
        if find is None:
            continue
        try:
            spec = find(__name__, search if finder is _machinery.PathFinder else None)
        except Exception:  # noqa: BLE001 - a finder that cannot answer is skipped
            continue
        origin = spec and spec.origin and _os.path.abspath(spec.origin)
        if origin and spec.submodule_search_locations is not None and _os.path.dirname(origin) != here:
            return spec  # a regular package, not this folder again
    return _util.spec_from_file_location(__name__, _os.path.join(here, 'sclip', '__init__.py'))  # not installed


if __name__ == 'sclip':
    _spec = _real_package_spec()
    _module = _util.module_from_spec(_spec)
    _sys.modules[__name__] = _module  # the import statement returns what sys.modules holds
    _spec.loader.exec_module(_module)
