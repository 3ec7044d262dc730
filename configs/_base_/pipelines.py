# Test pipelines by the short side S the image is resized to (keep ratio, long side at most 2048),
# for methods whose official configs resize differently from SCLIP's. Labels are loaded after the
# resize, so they stay at full resolution.
pipeline_336 = [
    dict(type='SCLIPLoadImage'),
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='SCLIPLoadAnnotations'),
    dict(type='PackSegInputs'),
]
pipeline_448 = [
    dict(type='SCLIPLoadImage'),
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    dict(type='SCLIPLoadAnnotations'),
    dict(type='PackSegInputs'),
]
pipeline_560 = [
    dict(type='SCLIPLoadImage'),
    dict(type='Resize', scale=(2048, 560), keep_ratio=True),
    dict(type='SCLIPLoadAnnotations'),
    dict(type='PackSegInputs'),
]
pipeline_384 = [
    dict(type='SCLIPLoadImage'),
    dict(type='Resize', scale=(2048, 384), keep_ratio=True),
    dict(type='SCLIPLoadAnnotations'),
    dict(type='PackSegInputs'),
]
pipeline_576 = [
    dict(type='SCLIPLoadImage'),
    dict(type='Resize', scale=(2048, 576), keep_ratio=True),
    dict(type='SCLIPLoadAnnotations'),
    dict(type='PackSegInputs'),
]
pipeline_688 = [
    dict(type='SCLIPLoadImage'),
    dict(type='Resize', scale=(2048, 688), keep_ratio=True),
    dict(type='SCLIPLoadAnnotations'),
    dict(type='PackSegInputs'),
]
