# ISPRS Potsdam val (14 tiles cut 512x512, 2016 images), 6 classes; 0 = boundary/unmatched colour -> 255 (reduce_zero_label=True, mmseg's default).
# As SegEarth-OV reads it (likyoo/SegEarth-OV @ 3e22a96, configs/cfg_*.py): its dataset class
# (PotsdamDataset), folders and suffixes; the pipeline of remote_sensing.py.
# Prepare: python tools/prepare_data.py potsdam SRC data/potsdam  (SRC: the folder holding 2_Ortho_RGB.zip and 5_Labels_all_noBoundary.zip; data/README.md).
_base_ = ['./remote_sensing.py']
benchmark = 'potsdam'  # column name in sweeps and the paper table
expected_images = 2016  # official split size, checked by tools/check_data.py
dataset_type = 'PotsdamDataset'
data_root = 'data/potsdam'
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val')))
