# AMKD without LS (_base_) with triplet terms on the features and on the
# logits (configs/_base_/distill/metric_variants.py).
_base_ = [
    './resnet20_resnet8_digits_no_ls.py',
    '../_base_/distill/metric_variants.py',
]
model = dict(distiller={{_base_.features_and_logits}})
