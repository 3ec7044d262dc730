# iSAID val tiled 896x896 with 384 overlap (11644 tiles), 16 classes with background 0, 255 = padding.
# As SegEarth-OV reads it (likyoo/SegEarth-OV @ 3e22a96, configs/cfg_*.py): its dataset class
# (iSAIDDataset), folders and suffixes; the pipeline of remote_sensing.py.
# Prepare: python tools/prepare_data.py isaid SRC data/iSAID  (SRC: the iSAID folder with val/images/*.zip (DOTA-v1.0) and val/Semantic_masks/images.zip; data/README.md).
_base_ = ['./remote_sensing.py']
benchmark = 'isaid'  # column name in sweeps and the paper table
expected_images = 11644  # official split size, checked by tools/check_data.py
dataset_type = 'iSAIDDataset'
data_root = 'data/iSAID'
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        reduce_zero_label=False,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val')))
