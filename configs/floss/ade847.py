# NACLIP + FLOSS on ade847: ours, not official (yasserben/FLOSS @ ccf1d49d has configs and rankings for five
# benchmarks only). The NACLIP config of this benchmark (its ADE20k settings with the ade847 vocabulary, ours)
# with FLOSS's text side as configs/floss/ (top-4 templates per class by entropy). FLOSS's rankings of these
# classes do not ship: they are computed by its own procedure (sclip/floss_ranking.py) into the file below,
#   python tools/floss_rankings.py configs/floss/ade847.py --out data/floss_rankings/template_rankings_naclip_ade847.json
# (FLOSS ranked on train images: add --img-dir with yours; by default the config's images).
_base_ = ['../naclip/ade847.py']
method = 'NACLIP + FLOSS'
paper_key = 'floss'
model = dict(
    text=dict(template_ranking=dict(
        file='data/floss_rankings/template_rankings_naclip_ade847.json',  # computed (above), keyed by class
        top_n=4,
        score='entropy',
        keys='class',
        unranked='all_templates')),  # ours: a class no template predicted keeps all 80 (FLOSS would stop)
    logit_scale=100,  # FLOSS's NACLIP default (its configs set none); it scales the experts' softmax
    prob_thd=0.0)
