# What SegEarth-OV's configs share (likyoo/SegEarth-OV @ 3e22a96, configs/cfg_*.py): the test pipeline
# (Resize to (448, 448) keeping the ratio, labels loaded after it, so at full resolution) and the loader.
# Each configs/_base_/datasets/rs_<key>.py inherits this and names its dataset and folders.
test_pipeline = [
    dict(type='SCLIPLoadImage'),
    dict(type='Resize', scale=(448, 448), keep_ratio=True),
    dict(type='SCLIPLoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(pipeline=test_pipeline))
