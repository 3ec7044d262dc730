# ISPRS Vaihingen val (17 areas cut 512x512, 398 images), 6 classes; 0 -> 255 (reduce_zero_label=True, mmseg's ISPRSDataset).
# As SegEarth-OV reads it (likyoo/SegEarth-OV @ 3e22a96, configs/cfg_*.py): its dataset class
# (ISPRSDataset), folders and suffixes; the pipeline of remote_sensing.py.
# Prepare: python tools/prepare_data.py vaihingen SRC data/vaihingen  (SRC: the folder holding ISPRS_semantic_labeling_Vaihingen.zip and ..._ground_truth_eroded_COMPLETE.zip; data/README.md).
_base_ = ['./remote_sensing.py']
benchmark = 'vaihingen'  # column name in sweeps and the paper table
expected_images = 398  # official split size, checked by tools/check_data.py
dataset_type = 'ISPRSDataset'
data_root = 'data/vaihingen'
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val')))
