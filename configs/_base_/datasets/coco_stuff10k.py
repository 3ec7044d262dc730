# COCO-Stuff10k test (1000 images), 171 classes, reduce_zero_label=True as the official config.
benchmark = 'coco_stuff10k'  # column name in sweeps and the paper table
expected_images = 1000  # official split size, checked by tools/check_data.py
dataset_type = 'COCOStuffDataset'
data_root = 'data/coco_stuff10k'
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
        data_prefix=dict(img_path='images/test2014', seg_map_path='annotations/test2014'),
        reduce_zero_label=True,
        pipeline=test_pipeline))
