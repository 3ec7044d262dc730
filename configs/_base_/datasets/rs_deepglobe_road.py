# DeepGlobe road, GRNet's GlobalRoadSet_Val test (1530 images), 0/1 (label >= 128 -> road).
# As SegEarth-OV reads it (likyoo/SegEarth-OV @ 3e22a96, configs/cfg_*.py): its dataset class
# (RoadValDataset), folders and suffixes; the pipeline of remote_sensing.py.
# Prepare: python tools/prepare_data.py deepglobe_road SRC data/GlobalRoadSet_Val/DeepGlobe_test_1530  (SRC: GlobalRoadSet_Val/DeepGlobe_test_1530 (img/*_sat.jpg, gt/*_mask.png); data/README.md).
_base_ = ['./remote_sensing.py']
benchmark = 'deepglobe_road'  # column name in sweeps and the paper table
expected_images = 1530  # official split size, checked by tools/check_data.py
dataset_type = 'RoadValDataset'
data_root = 'data/GlobalRoadSet_Val/DeepGlobe_test_1530'
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='image_cvt', seg_map_path='label_cvt')))
