# NACLIP + FLOSS on coco_stuff164k (yasserben/FLOSS tools/eval_naclip.py --dataset cocostuff --mode fusion): the NACLIP
# config of this benchmark with FLOSS's text side plugged in (sclip/models/methods/floss.py): per class its
# top-4 templates by entropy (FLOSS's shipped rankings, github yasserben/FLOSS @ ccf1d49d) make one expert.
_base_ = ['../naclip/coco_stuff164k.py']
method = 'NACLIP + FLOSS'
paper_key = 'floss'
model = dict(
    text=dict(template_ranking=dict(
        file='{{fileDirname}}/../class_texts/floss_naclip/template_rankings_naclip_cocostuff.json',
        top_n=4,
        score='entropy')),
    logit_scale=100,  # FLOSS's NACLIP default (its configs set none); it scales the experts' softmax
    prob_thd=0.0)
