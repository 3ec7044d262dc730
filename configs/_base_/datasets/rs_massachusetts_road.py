# Massachusetts roads, GRNet's GlobalRoadSet_Val test (49 images), 0/1 (label >= 128 -> road).
# As SegEarth-OV reads it (likyoo/SegEarth-OV @ 3e22a96, configs/cfg_*.py): its dataset class
# (RoadValDataset), folders and suffixes; the pipeline of remote_sensing.py.
# Prepare: python tools/prepare_data.py massachusetts_road SRC data/GlobalRoadSet_Val/Massachusetts_test_49  (SRC: GlobalRoadSet_Val/Massachusetts_test_49 (img/*.jpg, gt/*.png); data/README.md).
_base_ = ['./remote_sensing.py']
benchmark = 'massachusetts_road'  # column name in sweeps and the paper table
expected_images = 49  # official split size, checked by tools/check_data.py
dataset_type = 'RoadValDataset'
data_root = 'data/GlobalRoadSet_Val/Massachusetts_test_49'
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='img', seg_map_path='label_cvt')))
