# CHN6-CUG road val, 0/1 (label >= 128 -> road).
# As SegEarth-OV reads it (likyoo/SegEarth-OV @ 3e22a96, configs/cfg_*.py): its dataset class
# (CHN6_CUGDataset), folders and suffixes; the pipeline of remote_sensing.py.
# Prepare: python tools/prepare_data.py chn6_cug SRC data/CHN6-CUG  (SRC: the CHN6-CUG folder (val/images/*_sat.jpg, val/gt/*_mask.png); data/README.md).
_base_ = ['./remote_sensing.py']
benchmark = 'chn6_cug'  # column name in sweeps and the paper table
expected_images = None  # split size not stated by SegEarth-OV: tools/check_data.py does not count
dataset_type = 'CHN6_CUGDataset'
data_root = 'data/CHN6-CUG'
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='val/image_cvt', seg_map_path='val/label_cvt')))
