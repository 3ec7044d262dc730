"""Pictures for people: segment overlays with a legend, titled panels, attention heat maps.

Why: the demo, ``--show-dir`` and the attention figure are how users judge the method in
five minutes, so they must be readable at any image size: text and swatches scale with the
image, every panel says what it shows, and two classes never get look-alike colours.
Everything here is numpy + PIL (matplotlib only for its font file and colour map), so the
module costs nothing to import and needs no model.
"""
from __future__ import annotations

import functools
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

RGB = List[int]  # [r, g, b] in 0..255, the format of mmseg's METAINFO palettes

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CLASS_NAME_DIR = osp.join(REPO, 'configs', 'class_names')

# Our class files and the mmseg dataset whose labels (and palette) they index, as the
# configs pair them (tests/test_pictures.py checks this table against every config).
CLASS_FILE_DATASETS: Dict[str, str] = {
    'voc21.txt': 'PascalVOCDataset',
    'clearclip/voc21.txt': 'PascalVOCDataset',
    'proxyclip/voc21.txt': 'PascalVOCDataset',
    'voc20.txt': 'PascalVOC20Dataset',
    'clearclip/voc20.txt': 'PascalVOC20Dataset',
    'proxyclip/voc20.txt': 'PascalVOC20Dataset',
    'context59.txt': 'PascalContext59Dataset',
    'context60.txt': 'PascalContext60Dataset',
    'coco_object.txt': 'COCOObjectDataset',
    'clearclip/coco_object.txt': 'COCOObjectDataset',
    'proxyclip/coco_object.txt': 'COCOObjectDataset',
    'coco_stuff.txt': 'COCOStuffDataset',
    'city_scapes.txt': 'CityscapesDataset',
    'ade20k.txt': 'ADE20KDataset',
}

# The five most distinct of Sasha Trubetskoy's "20 simple, distinct colours" (red, green,
# yellow, blue, orange): the generic palette starts with them and grows farthest-first.
SEED_COLOURS: List[RGB] = [[230, 25, 75], [60, 180, 75], [255, 225, 25], [67, 99, 216], [245, 130, 49]]

ERROR_COLOUR, IGNORED_COLOUR, CORRECT_DIM = (255, 0, 0), (128, 128, 128), 0.4
TITLE_FRACTION, LEGEND_FRACTION, MIN_TEXT = 0.04, 0.025, 12


# --- text ---------------------------------------------------------------------------------
def text_size(height: int, width: int, fraction: float = LEGEND_FRACTION, minimum: int = MIN_TEXT) -> int:
    """Font size in pixels for an image of (height, width): ``fraction`` of its short side."""
    return max(int(minimum), int(round(fraction * min(height, width))))


@functools.lru_cache(maxsize=None)
def _truetype_path() -> Optional[str]:
    """DejaVuSans.ttf as shipped by matplotlib, or None when matplotlib cannot find it."""
    try:
        from matplotlib import font_manager
        return font_manager.findfont(font_manager.FontProperties(family='DejaVu Sans'),
                                     fallback_to_default=False)
    except Exception:  # noqa: BLE001 - no matplotlib, or no such font: use PIL's own
        return None


@functools.lru_cache(maxsize=64)
def load_font(size: int):
    """A ``size``-pixel font: DejaVu Sans when available, else PIL's default (scalable on
    Pillow >= 10.1, fixed 10 px before)."""
    path = _truetype_path()
    if path:
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            pass
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def text_box(font, text: str) -> Tuple[int, int, int, int]:
    """(left, top, right, bottom) of ``text`` drawn at (0, 0)."""
    return tuple(int(v) for v in font.getbbox(text))


def fitting_font(texts: Sequence[str], size: int, max_width: int, minimum: int = 6):
    """The largest font of at most ``size`` px in which every text fits ``max_width``."""
    while size > minimum and max((text_box(load_font(size), t)[2] for t in texts), default=0) > max_width:
        size -= 1
    return load_font(size)


def draw_text(draw: ImageDraw.ImageDraw, x: float, y_centre: float, text: str, font,
              centred: bool = False, fill='black') -> None:
    """Draw ``text`` with its ink starting at ``x`` (or centred on ``x``) and the font's
    line centred on ``y_centre``: texts in one font share a baseline whatever their letters
    (works for bitmap and TrueType fonts alike)."""
    left, _, right, _ = text_box(font, text)
    _, top, _, bottom = text_box(font, 'Ag')
    x = x - (left + right) / 2 if centred else x - left
    draw.text((x, y_centre - (top + bottom) / 2), text, fill=fill, font=font)


# --- palettes -----------------------------------------------------------------------------
def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65) of sRGB colours (..., 3) in 0..255: distances there match perception."""
    c = np.asarray(rgb, np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                             [0.0193, 0.1192, 0.9505]]).T
    xyz /= np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


@functools.lru_cache(maxsize=32)
def _distinct_palette(num_classes: int) -> Tuple[Tuple[int, int, int], ...]:
    chosen = [tuple(c) for c in SEED_COLOURS[:num_classes]]
    if num_classes > len(chosen):
        # Farthest-first sampling in Lab over a 16-level RGB grid: each new colour is the one
        # farthest from every colour chosen so far (no near-black or near-white: segments must
        # show over dark photos and swatches over the white legend).
        levels = np.linspace(0, 255, 16).round().astype(int)
        grid = np.stack(np.meshgrid(levels, levels, levels, indexing='ij'), -1).reshape(-1, 3)
        lab = srgb_to_lab(grid)
        keep = (lab[:, 0] >= 25) & (lab[:, 0] <= 90)
        grid, lab = grid[keep], lab[keep]
        nearest = np.linalg.norm(lab[:, None] - srgb_to_lab(np.array(chosen))[None], axis=-1).min(1)
        while len(chosen) < num_classes:
            pick = int(np.argmax(nearest))  # first maximum: deterministic
            chosen.append(tuple(int(v) for v in grid[pick]))
            nearest = np.minimum(nearest, np.linalg.norm(lab - lab[pick], axis=-1))
    return tuple(chosen)


def distinct_palette(num_classes: int) -> List[RGB]:
    """``num_classes`` well-separated colours, the same on every run: five fixed distinct ones,
    then each next colour the farthest (CIE Lab) from all before it, so a palette for n classes
    starts with the palette for fewer (min. distance ~40 Lab units for 20 classes, ~33 for 30;
    colours repeat only beyond 3590 classes)."""
    return [list(c) for c in _distinct_palette(int(num_classes))]


def _first_name(entry: Union[str, Sequence[str]]) -> str:
    """Normalised first name of a class given as "name", "name, synonym", "name; synonym"
    (ProxyCLIP's files) or [name, synonym]."""
    name = entry if isinstance(entry, str) else (entry[0] if len(entry) else '')
    return re.split('[,;]', name)[0].strip().lower().replace('_', ' ')


def _class_file_names(path: str) -> Tuple[str, ...]:
    with open(path, encoding='utf-8') as f:
        return tuple(_first_name(line) for line in f.read().splitlines() if line.strip())


def known_benchmarks() -> List[Tuple[Tuple[str, ...], str, List[RGB]]]:
    """(normalised class names, dataset type, palette) of every benchmark we know: our class
    files (with the dataset their configs use), then each mmseg-registered dataset's METAINFO."""
    from mmseg.registry import DATASETS
    from . import datasets  # noqa: F401  (registers our datasets)

    def meta_palette(dataset_type: str):
        meta = getattr(DATASETS.get(dataset_type), 'METAINFO', None) or {}
        classes, palette = meta.get('classes'), meta.get('palette')
        ok = classes is not None and palette is not None and len(classes) == len(palette)
        return (tuple(_first_name(c) for c in classes), [[int(v) for v in p] for p in palette]) if ok else None

    known = []
    for file_name, dataset_type in CLASS_FILE_DATASETS.items():
        path, meta = osp.join(CLASS_NAME_DIR, file_name), meta_palette(dataset_type)
        if osp.isfile(path) and meta is not None:
            names = _class_file_names(path)
            if len(names) == len(meta[1]):
                known.append((names, dataset_type, meta[1]))
    ours = list(dict.fromkeys(CLASS_FILE_DATASETS.values()))  # the benchmarks' own datasets first
    for dataset_type in ours + sorted(set(DATASETS.module_dict) - set(ours)):
        meta = meta_palette(dataset_type)
        if meta is not None:
            known.append((meta[0], dataset_type, meta[1]))
    return known


def benchmark_of(class_names: Sequence[Union[str, Sequence[str]]]) -> Optional[str]:
    """The dataset type whose classes are exactly ``class_names`` (by first names), or None."""
    names = tuple(_first_name(c) for c in class_names)
    return next((dataset for known, dataset, _ in known_benchmarks() if known == names), None)


def palette_for_classes(class_names: Sequence[Union[str, Sequence[str]]]) -> List[RGB]:
    """One colour per class: the benchmark's own mmseg palette when ``class_names`` are a known
    benchmark's (matched by the first name of each class), else :func:`distinct_palette`.

    ``class_names`` may be display names, class-file lines ("grass, lawn") or lists of
    synonyms (``ClassNames.classes``)."""
    names = tuple(_first_name(c) for c in class_names)
    for known, _, palette in known_benchmarks():
        if known == names:
            return [list(p) for p in palette]
    return distinct_palette(len(names))


def names_for_classes(class_names: Sequence[Union[str, Sequence[str]]]) -> List[str]:
    """What to call each class in a legend: the benchmark's own class names when
    ``class_names`` are a known benchmark's (VOC's class 0 is 'background', not the first of
    SCLIP's background synonyms, 'sky'), else the first name of each class."""
    from mmseg.registry import DATASETS
    names = tuple(_first_name(c) for c in class_names)
    for known, dataset_type, _ in known_benchmarks():
        if known == names:
            classes = (getattr(DATASETS.get(dataset_type), 'METAINFO', None) or {}).get('classes')
            if classes is not None and len(classes) == len(names):
                return [str(c) for c in classes]
    return list(names)


# --- segmentation overlay and legend ------------------------------------------------------
def overlay(image: np.ndarray, labels: np.ndarray, palette: Sequence[Sequence[int]], alpha: float = 0.5) -> np.ndarray:
    """RGB image (H, W, 3) blended with the colour of each pixel's label."""
    colours = np.asarray(palette, np.float32)[labels]
    return (image.astype(np.float32) * (1 - alpha) + colours * alpha).round().astype(np.uint8)


def legend_geometry(font_size: int) -> Dict[str, int]:
    """Swatch side, padding, swatch-to-text gap and row height for a legend in ``font_size``."""
    return dict(swatch=font_size, pad=max(4, font_size // 2), gap=max(3, font_size // 3),
                row=int(round(font_size * 1.5)))


def legend_layout(names: Sequence[str], width: int, font, geometry: Dict[str, int]) -> List[Tuple[int, int]]:
    """Top-left (x, y) of each legend entry, wrapping rows at ``width``."""
    pad, x, y, places = geometry['pad'], geometry['pad'], geometry['pad'], []
    for name in names:
        entry = geometry['swatch'] + geometry['gap'] + text_box(font, name)[2] + 2 * pad
        if x > pad and x + entry > width:
            x, y = pad, y + geometry['row']
        places.append((x, y))
        x += entry
    return places


def draw_segmentation(image: np.ndarray, labels: np.ndarray, names: Sequence[str],
                      palette: Sequence[Sequence[int]]) -> Image.Image:
    """The overlay at the image's size, with a legend of the classes present underneath;
    legend text and swatches are ~2.5% of the image's short side (at least 12 px)."""
    height, width = labels.shape
    size = text_size(height, width)
    font, geometry = load_font(size), legend_geometry(size)
    present = [int(c) for c in np.unique(labels)]
    places = legend_layout([names[c] for c in present], width, font, geometry)
    legend_height = (places[-1][1] + geometry['row'] + geometry['pad']) if places else 0
    canvas = Image.new('RGB', (width, height + legend_height), 'white')
    canvas.paste(Image.fromarray(overlay(image, labels, palette)), (0, 0))
    draw = ImageDraw.Draw(canvas)
    swatch, outline = geometry['swatch'], max(1, size // 12)
    for c, (x, y) in zip(present, places):
        y += height + (geometry['row'] - swatch) // 2
        draw.rectangle([x, y, x + swatch - 1, y + swatch - 1], fill=tuple(int(v) for v in palette[c]),
                       outline=(60, 60, 60), width=outline)
        draw_text(draw, x + swatch + geometry['gap'], y + swatch / 2, names[c], font)
    return canvas


def save_png(picture: Image.Image, path: str, classes: Optional[Sequence[str]] = None,
             text: Optional[Dict[str, str]] = None) -> None:
    """Save as PNG with what the picture shows as text chunks, for tools and tests:
    ``sclip:classes`` (legend classes, one a line) and any ``text`` items."""
    info = PngInfo()
    if classes is not None:
        info.add_text('sclip:classes', '\n'.join(classes))
    for key, value in (text or {}).items():
        info.add_itxt(key, value)
    picture.save(path, format='PNG', pnginfo=info)


# --- titled panels ------------------------------------------------------------------------
def titled_grid(panels: Sequence[Sequence[np.ndarray]], titles: Sequence[Sequence[str]],
                font_size: Optional[int] = None) -> Tuple[Image.Image, Dict[str, str]]:
    """Panels (rows of RGB arrays of one size) on white, each under a title strip; returns the
    picture and PNG text describing it (``sclip:panels``: titles row by row, one a line;
    ``sclip:grid``: rows x columns; ``sclip:panel_size``: W x H; ``sclip:title_height``)."""
    height, width = panels[0][0].shape[:2]
    size = font_size or text_size(height, width, TITLE_FRACTION)
    flat_titles = [t for row in titles for t in row]
    font = fitting_font(flat_titles, size, width - 4)
    strip = int(round(size * 1.6))
    gap = max(2, size // 4)
    rows, cols = len(panels), max(len(row) for row in panels)
    canvas = Image.new('RGB', (cols * width + (cols - 1) * gap, rows * (strip + height) + (rows - 1) * gap), 'white')
    draw = ImageDraw.Draw(canvas)
    for r, (row_panels, row_titles) in enumerate(zip(panels, titles)):
        top = r * (strip + height + gap)
        for c, (panel, title) in enumerate(zip(row_panels, row_titles)):
            left = c * (width + gap)
            draw_text(draw, left + width / 2, top + strip / 2, title, font, centred=True)
            canvas.paste(Image.fromarray(np.ascontiguousarray(panel[:height, :width])), (left, top + strip))
    text = {'sclip:panels': '\n'.join(flat_titles), 'sclip:grid': f'{rows}x{cols}',
            'sclip:panel_size': f'{width}x{height}', 'sclip:title_height': str(strip)}
    return canvas, text


def error_panel(image: np.ndarray, prediction: np.ndarray, truth: np.ndarray, ignore_index: int = 255) -> np.ndarray:
    """Where the prediction is wrong: red; ignored ground truth: grey; correct: the image dimmed."""
    panel = (image.astype(np.float32) * CORRECT_DIM).round().astype(np.uint8)
    ignored = truth == ignore_index
    panel[ignored] = IGNORED_COLOUR
    panel[(prediction != truth) & ~ignored] = ERROR_COLOUR
    return panel


# --- attention heat maps ------------------------------------------------------------------
def query_attention(maps, grid: Tuple[int, int], point_xy: Tuple[float, float], size: Tuple[int, int]) -> np.ndarray:
    """Head-averaged attention (gh, gw) of the patch under ``point_xy`` (pixels of an image of
    ``size`` (H, W)) over all patches; ``maps`` is (heads, N, N) with the CLS token first."""
    rows, cols = grid
    row = min(int(point_xy[1] / size[0] * rows), rows - 1)
    col = min(int(point_xy[0] / size[1] * cols), cols - 1)
    token = 1 + row * cols + col
    return maps[:, token, 1:].mean(0).reshape(rows, cols).float().cpu().numpy()


def upsample_bilinear(values: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """(h, w) -> ``size`` (H, W), bilinear with pixel centres aligned as
    ``F.interpolate(mode='bilinear', align_corners=False)``."""
    values = np.asarray(values, np.float64)

    def axis(n_out: int, n_in: int):
        src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        low = np.floor(src).astype(int)
        return low, np.minimum(low + 1, n_in - 1), src - low

    y0, y1, wy = axis(size[0], values.shape[0])
    x0, x1, wx = axis(size[1], values.shape[1])
    top = values[y0][:, x0] * (1 - wx) + values[y0][:, x1] * wx
    bottom = values[y1][:, x0] * (1 - wx) + values[y1][:, x1] * wx
    return top * (1 - wy[:, None]) + bottom * wy[:, None]


def heat_overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5, colour_map: str = 'turbo') -> np.ndarray:
    """The image (H, W, 3) under a colour-mapped heat map (H, W), scaled to its own min..max."""
    import matplotlib
    span = float(heat.max() - heat.min())
    normalised = (heat - heat.min()) / span if span > 0 else np.zeros_like(heat)
    colours = matplotlib.colormaps[colour_map](normalised)[..., :3] * 255
    return (image.astype(np.float32) * (1 - alpha) + colours * alpha).round().astype(np.uint8)


def mark_point(panel: np.ndarray, point_xy: Tuple[float, float]) -> np.ndarray:
    """A copy of ``panel`` with a ringed dot at ``point_xy`` (white on black, seen on any colour)."""
    picture = Image.fromarray(panel)
    draw = ImageDraw.Draw(picture)
    radius = max(4, int(round(0.025 * max(panel.shape[:2]))))
    x, y = point_xy
    ring = max(2, radius // 3)
    draw.ellipse([x - radius - 1, y - radius - 1, x + radius + 1, y + radius + 1], outline='black', width=ring + 2)
    draw.ellipse([x - radius, y - radius, x + radius, y + radius], outline='white', width=ring)
    dot = max(1, radius // 4)
    draw.ellipse([x - dot, y - dot, x + dot, y + dot], fill='white', outline='black')
    return np.array(picture)


def display_size(height: int, width: int, smallest: int = 256, largest: int = 512) -> Tuple[int, int]:
    """(H, W) with the same aspect ratio and the long side within [smallest, largest]."""
    long_side = max(height, width)
    scale = min(max(long_side, smallest), largest) / long_side
    return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


def attention_figure(image: np.ndarray, points_xy: Sequence[Tuple[float, float]], variants: Sequence[str],
                     maps: np.ndarray) -> Tuple[Image.Image, Dict[str, str]]:
    """One row per query point: the image with the point, then each variant's attention of that
    point (``maps`` (points, variants, gh, gw)) as a heat map over the image, at the image's
    aspect ratio. ``points_xy`` are pixels of ``image``; returns the picture and its PNG text."""
    height, width = image.shape[:2]
    shown_h, shown_w = display_size(height, width)
    shown = np.array(Image.fromarray(image).resize((shown_w, shown_h), Image.BICUBIC))
    panels, titles = [], []
    for p, (x, y) in enumerate(points_xy):
        at = (x * shown_w / width, y * shown_h / height)
        where = f'({x:g}, {y:g})'
        panels.append([mark_point(shown, at)] + [
            mark_point(heat_overlay(shown, upsample_bilinear(maps[p, v], (shown_h, shown_w))), at)
            for v in range(len(variants))])
        titles.append([f'image {where}'] + [f'{variant} {where}' for variant in variants])
    return titled_grid(panels, titles)
