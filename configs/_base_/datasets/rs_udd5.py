# UDD5 val, 5 classes, index labels as released (no conversion), .JPG images.
# As SegEarth-OV reads it (likyoo/SegEarth-OV @ 3e22a96, configs/cfg_*.py): its dataset class
# (UDD5Dataset), folders and suffixes; the pipeline of remote_sensing.py.
# Prepare: python tools/prepare_data.py udd5 SRC data/UDD/UDD/UDD5  (SRC: the UDD5 folder of the release (val/src/*.JPG, val/gt/*.png); data/README.md).
_base_ = ['./remote_sensing.py']
benchmark = 'udd5'  # column name in sweeps and the paper table
expected_images = None  # split size not stated by SegEarth-OV: tools/check_data.py does not count
dataset_type = 'UDD5Dataset'
data_root = 'data/UDD/UDD/UDD5'
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='val/src', seg_map_path='val/gt')))
