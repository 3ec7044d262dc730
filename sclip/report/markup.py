"""The report's one way to make HTML: literal templates whose every value is escaped.

Why: metrics.json fields (and so any ``--cfg-options`` value a run accepted) reach the page;
a page built by string concatenation is safe only where someone remembered to escape. Here a
fragment is either ``Markup`` made by ``html()`` from a literal template (trusted) or a value,
and ``html()`` escapes every value for text and for quoted attributes (``& < > " '``), so a
forgotten escape cannot exist. Attributes are always double-quoted in the templates, and the
only URLs on the page are the PNG data URIs made here (``png_uri``).
"""
from __future__ import annotations

import base64
from typing import Iterable

from markupsafe import Markup, escape

__all__ = ['Markup', 'escape', 'html', 'join', 'png_uri']

PNG_URI_PREFIX = 'data:image/png;base64,'


def html(template: str, *args, **kwargs) -> Markup:
    """``template`` (a literal written in this package, never data) with ``{}`` fields filled
    by escaped values; values that are already ``Markup`` (made by ``html``) are kept."""
    return Markup(template).format(*args, **kwargs)


def join(parts: Iterable, separator: str = '') -> Markup:
    """The parts one after another, each escaped unless it is ``Markup``."""
    return Markup(separator).join(parts)


class PngUri(str):
    """A data URI of PNG bytes encoded here: the only value the page puts in ``src``."""


def png_uri(png: bytes) -> PngUri:
    return PngUri(PNG_URI_PREFIX + base64.b64encode(png).decode('ascii'))


def image_source(uri: PngUri) -> str:
    """``uri`` checked to be one made by ``png_uri`` (a ``javascript:`` or remote URL cannot be)."""
    if not isinstance(uri, PngUri) or not uri.startswith(PNG_URI_PREFIX):
        raise ValueError('the report only embeds PNG data URIs made by png_uri')
    return uri
