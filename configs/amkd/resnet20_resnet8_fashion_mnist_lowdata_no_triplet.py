# The AMKD default of _base_ without the triplet term: its boundary
# samples with boundary KD alone (configs/_base_/distill/metric_variants.py).
_base_ = [
    './resnet20_resnet8_fashion_mnist_lowdata.py',
    '../_base_/distill/metric_variants.py',
]
model = dict(distiller={{_base_.no_triplet}})
