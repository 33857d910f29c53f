# AMKD without LS (_base_) with the pooled features (neck output) as the
# triplet embedding (configs/_base_/distill/metric_variants.py).
_base_ = [
    './resnet20_resnet8_digits_lowdata_no_ls.py',
    '../_base_/distill/metric_variants.py',
]
model = dict(distiller={{_base_.features}})
