# AMKD without LS (_base_) with the triplet term on the clean images as well
# (Oki et al.) (configs/_base_/distill/metric_variants.py).
_base_ = [
    './resnet20_resnet8_digits_no_ls.py',
    '../_base_/distill/metric_variants.py',
]
model = dict(distiller={{_base_.also_clean}})
