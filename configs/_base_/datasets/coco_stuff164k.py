# COCO-Stuff164k val2017 (5000 images), 171 classes.
benchmark = 'coco_stuff164k'  # column name in sweeps and the paper table
expected_images = 5000  # official split size, checked by tools/check_data.py
dataset_type = 'COCOStuffDataset'
data_root = 'data/coco_stuff164k'
test_pipeline = [
    dict(type='SCLIPLoadImage'),
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
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
        data_prefix=dict(img_path='images/val2017', seg_map_path='annotations/val2017'),
        pipeline=test_pipeline))
