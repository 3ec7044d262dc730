# NACLIP + FLOSS on context459: ours, not official (yasserben/FLOSS @ ccf1d49d has configs and rankings for five
# benchmarks only). The NACLIP config of this benchmark (its Context59 settings with the context459 vocabulary, ours)
# with FLOSS's text side as configs/floss/ (top-4 templates per class by entropy). FLOSS's rankings of these
# classes do not ship: they are computed by its own procedure (sclip/floss_ranking.py) into the file below,
#   python tools/floss_rankings.py configs/floss/context459.py --out data/floss_rankings/template_rankings_naclip_context459.json
# (FLOSS ranked on train images: add --img-dir with yours; by default the config's images).
_base_ = ['../naclip/context459.py']
method = 'NACLIP + FLOSS'
paper_key = 'floss'
model = dict(
    text=dict(template_ranking=dict(
        file='data/floss_rankings/template_rankings_naclip_context459.json',  # computed (above), keyed by class
        top_n=4,
        score='entropy',
        keys='class',
        unranked='all_templates')),  # ours: a class no template predicted keeps all 80 (FLOSS would stop)
    logit_scale=100,  # FLOSS's NACLIP default (its configs set none); it scales the experts' softmax
    prob_thd=0.0)
