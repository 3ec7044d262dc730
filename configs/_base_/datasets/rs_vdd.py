# VDD test, 7 classes, index labels as released (no conversion), .JPG images.
# As SegEarth-OV reads it (likyoo/SegEarth-OV @ 3e22a96, configs/cfg_*.py): its dataset class
# (VDDDataset), folders and suffixes; the pipeline of remote_sensing.py.
# Prepare: python tools/prepare_data.py vdd SRC data/VDD  (SRC: the VDD folder of the release (test/src/*.JPG, test/gt/*.png); data/README.md).
_base_ = ['./remote_sensing.py']
benchmark = 'vdd'  # column name in sweeps and the paper table
expected_images = None  # split size not stated by SegEarth-OV: tools/check_data.py does not count
dataset_type = 'VDDDataset'
data_root = 'data/VDD'
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='test/src', seg_map_path='test/gt')))
