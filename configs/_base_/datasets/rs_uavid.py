# UAVid test_gt sequences cut 1280x1080 (no overlap), 7 classes (Moving_Car -> car), 255 = padding.
# As SegEarth-OV reads it (likyoo/SegEarth-OV @ 3e22a96, configs/cfg_*.py): its dataset class
# (UAVidDataset), folders and suffixes; the pipeline of remote_sensing.py.
# Prepare: python tools/prepare_data.py uavid SRC data/UAVid  (SRC: the UAVid folder holding test_gt/<seq>/{Images,Labels}/*.png; data/README.md).
_base_ = ['./remote_sensing.py']
benchmark = 'uavid'  # column name in sweeps and the paper table
expected_images = None  # split size not stated by SegEarth-OV: tools/check_data.py does not count
dataset_type = 'UAVidDataset'
data_root = 'data/UAVid'
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='img_dir/test', seg_map_path='ann_dir/test')))
