# NACLIP + FLOSS on voc20 (yasserben/FLOSS tools/eval_naclip.py --dataset pascalvoc20 --mode fusion): the NACLIP
# config of this benchmark with FLOSS's text side plugged in (sclip/models/methods/floss.py): per class its
# top-4 templates by entropy (FLOSS's shipped rankings, github yasserben/FLOSS @ ccf1d49d) make one expert.
_base_ = ['../naclip/voc20.py']
method = 'NACLIP + FLOSS'
paper_key = 'floss'
model = dict(
    text=dict(template_ranking=dict(
        file='{{fileDirname}}/../class_texts/floss_naclip/template_rankings_naclip_pascalvoc20.json',
        top_n=4,
        # official _apply_quick_and_dirty_fix: the class file's names that the ranking file spells otherwise
        aliases={'ship': 'boat', 'table': 'diningtable', 'person in shirt': 'person', 'person in jeans': 'person',
                 'person in dress': 'person', 'person in sweater': 'person', 'person in skirt': 'person',
                 'person in jacket': 'person', 'television monitor': 'tvmonitor', 'tv monitor': 'tvmonitor',
                 'monitor': 'tvmonitor', 'television': 'tvmonitor', 'screen': 'tvmonitor'},
        score='entropy')),
    logit_scale=100,  # FLOSS's NACLIP default (its configs set none); it scales the experts' softmax
    prob_thd=0.0)
