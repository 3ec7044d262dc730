# Runtime shared by every sclip config: mmseg scope, the test loop, logging, visualisation.
custom_imports = dict(imports=['sclip'], allow_failed_imports=False)
default_scope = 'mmseg'
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    progress=dict(type='SCLIPProgressHook', line_every=30),  # seconds between log lines; a bar on a terminal
    # evaluation only: none of mmengine's training hooks
    param_scheduler=None,
    checkpoint=None,
    sampler_seed=None)
# no visualisation hook unless --show-dir asks for one (sclip/runner.py enable_outputs)
test_evaluator = dict(type='SCLIPIoUMetric', iou_metrics=['mIoU'])
