# ADE20K-full val (2000 images), 847 classes, 65535 (unlabelled) ignored.
# Layout and labels of Detectron2/MaskFormer's prepare_ade20k_full_sem_seg.py (ADE20K_2021_17_01,
# images resized to short side <= 512, 16-bit .tif class indices), read as ProxyCLIP's official
# cfg_ade847.py (mc-lan/ProxyCLIP @ e7b767f) and Trident's read them (reduce_zero_label=False).
# Prepare: python tools/prepare_data.py ade847 SRC data/ADE20K_2021_17_01 (data/README.md).
# Ignored value: Detectron2 registers ADE-847 with ignore_label=65535; each method config sets
# test_evaluator.ignore_index=65535. ProxyCLIP/Trident evaluate with mmseg's default 255, which
# drops class 255 ('slot machine') from the labels and counts predictions on unlabelled pixels
# into the unions; we follow Detectron2 (the field's CAT-Seg/SAN numbers use it).
benchmark = 'ade847'  # column name in sweeps and the paper table
expected_images = 2000  # official split size, checked by tools/check_data.py
dataset_type = 'ADE847Dataset'
data_root = 'data/ADE20K_2021_17_01'
test_pipeline = [
    dict(type='SCLIPLoadImage'),
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='SCLIPLoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images_detectron2/validation', seg_map_path='annotations_detectron2/validation'),
        pipeline=test_pipeline))
