# ADE20k val (2000 images), 150 classes, background ignored.
benchmark = 'ade20k'  # column name in sweeps and the paper table
expected_images = 2000  # official split size, checked by tools/check_data.py
dataset_type = 'ADE20KDataset'
data_root = 'data/ade/ADEChallengeData2016'
test_pipeline = [
    dict(type='SCLIPLoadImage'),
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='SCLIPLoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
