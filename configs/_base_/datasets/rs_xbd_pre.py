# xBD test, pre-disaster images, 0/1 (any target value >= 1 -> building).
# As SegEarth-OV reads it (likyoo/SegEarth-OV @ 3e22a96, configs/cfg_*.py): its dataset class
# (xBDDataset), folders and suffixes; the pipeline of remote_sensing.py.
# Prepare: python tools/prepare_data.py xbd_pre SRC data/xBD  (SRC: the xBD test folder (images/*.png, targets/*_target.png); data/README.md).
_base_ = ['./remote_sensing.py']
benchmark = 'xbd_pre'  # column name in sweeps and the paper table
expected_images = 933  # official split size, checked by tools/check_data.py
dataset_type = 'xBDDataset'
data_root = 'data/xBD'
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='test/images_pre', seg_map_path='test/targets_cvt_pre')))
