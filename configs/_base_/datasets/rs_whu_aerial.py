# WHU building, aerial imagery val, 0/1 (label >= 128 -> building).
# As SegEarth-OV reads it (likyoo/SegEarth-OV @ 3e22a96, configs/cfg_*.py): its dataset class
# (WHUDataset), folders and suffixes; the pipeline of remote_sensing.py.
# Prepare: python tools/prepare_data.py whu_aerial SRC data/WHU-BD  (SRC: the WHU aerial folder (val/image/*.png, val/label/*.png); data/README.md).
_base_ = ['./remote_sensing.py']
benchmark = 'whu_aerial'  # column name in sweeps and the paper table
expected_images = None  # split size not stated by SegEarth-OV: tools/check_data.py does not count
dataset_type = 'WHUDataset'
data_root = 'data/WHU-BD'
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='val/image', seg_map_path='val/label_cvt')))
