# Inria aerial image labeling, FCtL's test split (27 tiles of 5000x5000 cut 1000x1000: 675 images), 0/1.
# As SegEarth-OV reads it (likyoo/SegEarth-OV @ 3e22a96, configs/cfg_*.py): its dataset class
# (InriaDataset), folders, suffixes and test pipeline (Resize to (448, 448) keeping the ratio).
# Prepare: python tools/prepare_data.py inria SRC data/Inria  (SRC: AerialImageDataset/train of the download (images/*.tif, gt/*.tif); data/README.md).
benchmark = 'inria'  # column name in sweeps and the paper table
expected_images = 675  # official split size, checked by tools/check_data.py
dataset_type = 'InriaDataset'
data_root = 'data/Inria'
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
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='img_dir/split_test', seg_map_path='ann_dir/split_test'),
        pipeline=test_pipeline))
