# Inria aerial image labeling, FCtL's test split (27 tiles of 5000x5000 cut 1000x1000: 675 images), 0/1.
# As SegEarth-OV reads it (likyoo/SegEarth-OV @ 3e22a96, configs/cfg_*.py): its dataset class
# (InriaDataset), folders and suffixes; the pipeline of remote_sensing.py.
# Prepare: python tools/prepare_data.py inria SRC data/Inria  (SRC: AerialImageDataset/train of the download (images/*.tif, gt/*.tif); data/README.md).
_base_ = ['./remote_sensing.py']
benchmark = 'inria'  # column name in sweeps and the paper table
expected_images = 675  # official split size, checked by tools/check_data.py
dataset_type = 'InriaDataset'
data_root = 'data/Inria'
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='img_dir/split_test', seg_map_path='ann_dir/split_test')))
