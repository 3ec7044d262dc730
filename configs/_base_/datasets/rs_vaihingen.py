# ISPRS Vaihingen val (17 areas cut 512x512, 398 images), 6 classes; 0 -> 255 (reduce_zero_label=True, mmseg's ISPRSDataset).
# As SegEarth-OV reads it (likyoo/SegEarth-OV @ 3e22a96, configs/cfg_*.py): its dataset class
# (ISPRSDataset), folders, suffixes and test pipeline (Resize to (448, 448) keeping the ratio).
# Prepare: python tools/prepare_data.py vaihingen SRC data/vaihingen  (SRC: the folder holding ISPRS_semantic_labeling_Vaihingen.zip and ..._ground_truth_eroded_COMPLETE.zip; data/README.md).
benchmark = 'vaihingen'  # column name in sweeps and the paper table
expected_images = 398  # official split size, checked by tools/check_data.py
dataset_type = 'ISPRSDataset'
data_root = 'data/vaihingen'
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
