# LoveDA val (1669 images, Rural + Urban), 7 classes; label 0 = no-data -> 255 (reduce_zero_label=True).
# As SegEarth-OV reads it (likyoo/SegEarth-OV @ 3e22a96, configs/cfg_*.py): its dataset class
# (LoveDADataset), folders and suffixes; the pipeline of remote_sensing.py.
# Prepare: python tools/prepare_data.py loveda SRC data/LoveDA  (SRC: the folder holding Train.zip and Val.zip (or them unzipped); data/README.md).
_base_ = ['./remote_sensing.py']
benchmark = 'loveda'  # column name in sweeps and the paper table
expected_images = 1669  # official split size, checked by tools/check_data.py
dataset_type = 'LoveDADataset'
data_root = 'data/LoveDA'
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        reduce_zero_label=True,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val')))
