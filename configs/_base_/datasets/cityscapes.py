# Cityscapes val (500 images), 19 classes.
benchmark = 'cityscapes'  # column name in sweeps and the paper table
expected_images = 500  # official split size, checked by tools/check_data.py
dataset_type = 'CityscapesDataset'
data_root = 'data/cityscapes'
test_pipeline = [
    dict(type='SCLIPLoadImage'),
    dict(type='Resize', scale=(2048, 560), keep_ratio=True),
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
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=test_pipeline))
