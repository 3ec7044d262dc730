# WHU building, Satellite dataset II (East Asia) cropped test, .tif, 0/1 (label >= 128 -> building).
# As SegEarth-OV reads it (likyoo/SegEarth-OV @ 3e22a96, configs/cfg_*.py): its dataset class
# (WHUDataset), folders and suffixes; the pipeline of remote_sensing.py.
# Prepare: python tools/prepare_data.py whu_sat2 SRC data/WHU_Sat_II  (SRC: the download's 1.cropped folder (test/image/*.tif, test/label/*.tif); data/README.md).
_base_ = ['./remote_sensing.py']
benchmark = 'whu_sat2'  # column name in sweeps and the paper table
expected_images = None  # split size not stated by SegEarth-OV: tools/check_data.py does not count
dataset_type = 'WHUDataset'
data_root = 'data/WHU_Sat_II'
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        img_suffix='.tif',
        seg_map_suffix='.tif',
        data_prefix=dict(img_path='test/image', seg_map_path='test/label_cvt')))
