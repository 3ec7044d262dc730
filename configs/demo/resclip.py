# ResCLIP on any image (tools/web_demo.py): its base sets no temp_thd, which each official config sets
# per benchmark; these are the settings its official configs use most (COCO-Object, COCO-Stuff164k
# and 10k), a benchmark-free default for free-form class names.
_base_ = ['../_base_/resclip.py']
model = dict(method=dict(temp_thd=0.11, rcs_weights=(2.0, 0.4), sfr_weights=(1.8, 0.7)))
