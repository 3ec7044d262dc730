"""Test oracles: line-by-line transcriptions of the official inference codes.

Why: our segmentors must predict the same labels as the authors' code, pixel for pixel.
Each module here transcribes one official segmentor (``predict`` and the CLIP vision
forward it calls) onto an open_clip 3.x ``CLIP``, keeping every quirk of the original
(each one named in a comment), so a test can run ours and the official computation on the
same random weights and compare. This is test-side reference code: it copies the official
arithmetic on purpose and is never imported by ``sclip``.

Every module exposes
``predict(clip_model, query_features, query_idx, img, ori_shape, **settings) -> (1, h, w)``
with the official constructor arguments as keyword settings (official defaults), plus
``half=False`` (``True``: the official fp16 numerics) and ``return_logits=False`` (``True``:
also return the tensor handed to the official ``postprocess_result``).

Modules: sclip, clearclip, naclip, scclip, resclip, proxyclip; common holds what the official
codes share literally.
"""
