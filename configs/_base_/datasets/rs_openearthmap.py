# OpenEarthMap (OpenEarthMap_wo_xBD) val, 9 classes; 0 = 'background' is scored (reduce_zero_label=False, as official).
# As SegEarth-OV reads it (likyoo/SegEarth-OV @ 3e22a96, configs/cfg_*.py): its dataset class
# (OpenEarthMapDataset), folders, suffixes and test pipeline (Resize to (448, 448) keeping the ratio).
# Prepare: python tools/prepare_data.py openearthmap SRC data/OpenEarthMap  (SRC: the unzipped OpenEarthMap_wo_xBD folder (val.txt, <region>/images|labels/*.tif); data/README.md).
benchmark = 'openearthmap'  # column name in sweeps and the paper table
expected_images = None  # split size not stated by SegEarth-OV: tools/check_data.py does not count
dataset_type = 'OpenEarthMapDataset'
data_root = 'data/OpenEarthMap'
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
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=test_pipeline))
