# OpenEarthMap (OpenEarthMap_wo_xBD) val, 9 classes; 0 = 'background' is scored (reduce_zero_label=False, as official).
# As SegEarth-OV reads it (likyoo/SegEarth-OV @ 3e22a96, configs/cfg_*.py): its dataset class
# (OpenEarthMapDataset), folders and suffixes; the pipeline of remote_sensing.py.
# Prepare: python tools/prepare_data.py openearthmap SRC data/OpenEarthMap  (SRC: the unzipped OpenEarthMap_wo_xBD folder (val.txt, <region>/images|labels/*.tif); data/README.md).
_base_ = ['./remote_sensing.py']
benchmark = 'openearthmap'  # column name in sweeps and the paper table
expected_images = None  # split size not stated by SegEarth-OV: tools/check_data.py does not count
dataset_type = 'OpenEarthMapDataset'
data_root = 'data/OpenEarthMap'
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val')))
