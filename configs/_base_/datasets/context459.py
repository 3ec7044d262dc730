# PASCAL Context val (5104 images), all 459 classes of the release's labels.txt, 65535 (unlabelled) ignored.
# Labels of CAT-Seg's datasets/prepare_pascal_context_459.py (KU-CVLAB/CAT-Seg @ 6d3a188):
# LabelMap - 1 of trainval/<id>.mat as 16-bit .tif (0 = unlabelled wraps to 65535), in
# annotations_detectron2/pc459_val, the folder ProxyCLIP's official cfg_context459.py reads.
# Prepare: python tools/prepare_data.py context459 SRC data/VOCdevkit/VOC2010 (data/README.md).
# Ignored value: Detectron2 registers Context-459 with ignore_label=65535; each method config
# sets test_evaluator.ignore_index=65535 (ProxyCLIP/Trident keep mmseg's 255: see ade847.py).
benchmark = 'context459'  # column name in sweeps and the paper table
expected_images = 5104  # official split size, checked by tools/check_data.py
dataset_type = 'PascalContext459Dataset'
data_root = 'data/VOCdevkit/VOC2010'
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
        data_prefix=dict(img_path='JPEGImages', seg_map_path='annotations_detectron2/pc459_val'),
        ann_file='ImageSets/SegmentationContext/val.txt',
        pipeline=test_pipeline))
