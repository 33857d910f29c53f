# The AMKD default of _base_ with the pooled features (neck output) as the
# triplet embedding (configs/_base_/distill/metric_variants.py).
_base_ = [
    './resnet20_resnet8_digits.py',
    '../_base_/distill/metric_variants.py',
]
model = dict(distiller={{_base_.features}})
