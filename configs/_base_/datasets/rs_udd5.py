# UDD5 val, 5 classes, index labels as released (no conversion), .JPG images.
# As SegEarth-OV reads it (likyoo/SegEarth-OV @ 3e22a96, configs/cfg_*.py): its dataset class
# (UDD5Dataset), folders, suffixes and test pipeline (Resize to (448, 448) keeping the ratio).
# Prepare: python tools/prepare_data.py udd5 SRC data/UDD/UDD/UDD5  (SRC: the UDD5 folder of the release (val/src/*.JPG, val/gt/*.png); data/README.md).
benchmark = 'udd5'  # column name in sweeps and the paper table
expected_images = None  # split size not stated by SegEarth-OV: tools/check_data.py does not count
dataset_type = 'UDD5Dataset'
data_root = 'data/UDD/UDD/UDD5'
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
        data_prefix=dict(img_path='val/src', seg_map_path='val/gt'),
        pipeline=test_pipeline))
