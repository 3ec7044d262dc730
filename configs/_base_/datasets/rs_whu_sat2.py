# WHU building, Satellite dataset II (East Asia) cropped test, .tif, 0/1 (label >= 128 -> building).
# As SegEarth-OV reads it (likyoo/SegEarth-OV @ 3e22a96, configs/cfg_*.py): its dataset class
# (WHUDataset), folders, suffixes and test pipeline (Resize to (448, 448) keeping the ratio).
# Prepare: python tools/prepare_data.py whu_sat2 SRC data/WHU_Sat_II  (SRC: the download's 1.cropped folder (test/image/*.tif, test/label/*.tif); data/README.md).
benchmark = 'whu_sat2'  # column name in sweeps and the paper table
expected_images = None  # split size not stated by SegEarth-OV: tools/check_data.py does not count
dataset_type = 'WHUDataset'
data_root = 'data/WHU_Sat_II'
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
        img_suffix='.tif',
        seg_map_suffix='.tif',
        data_prefix=dict(img_path='test/image', seg_map_path='test/label_cvt'),
        pipeline=test_pipeline))
