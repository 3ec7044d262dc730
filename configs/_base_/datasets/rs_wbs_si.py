# Water bodies in satellite images (Kaggle), the 499 val images of SegEarth-OV's wbs-si_val.txt, 0/1 masks (.png, see below).
# As SegEarth-OV reads it (likyoo/SegEarth-OV @ 3e22a96, configs/cfg_*.py): its dataset class
# (WaterDataset), folders and suffixes; the pipeline of remote_sensing.py.
# Prepare: python tools/prepare_data.py wbs_si SRC data/WaterBodiesDatasetPreprocessed  (SRC: the WaterBodiesDatasetPreprocessed folder (Images/*.jpg, Masks/*.jpg); data/README.md).
# Masks: SegEarth-OV's converter thresholds the .jpg masks (>= 128 -> 1) and saves them again as .jpg,
# whose artifacts put values 2 at some edges (mmseg then counts those pixels as wrong in the unions);
# ours saves the same thresholded 0/1 masks as lossless .png (sclip refuses JPEG labels).
_base_ = ['./remote_sensing.py']
benchmark = 'wbs_si'  # column name in sweeps and the paper table
expected_images = 499  # official split size, checked by tools/check_data.py
dataset_type = 'WaterDataset'
data_root = 'data/WaterBodiesDatasetPreprocessed'
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='val.txt',
        seg_map_suffix='.png',  # lossless masks: see the note above
        data_prefix=dict(img_path='Images', seg_map_path='Masks_cvt')))
