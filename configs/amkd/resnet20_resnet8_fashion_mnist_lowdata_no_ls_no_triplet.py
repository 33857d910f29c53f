# The pair without logit standardization (_base_) and without the triplet
# term: its boundary samples with boundary KD alone.
_base_ = [
    './resnet20_resnet8_fashion_mnist_lowdata_no_ls.py',
    '../_base_/distill/metric_variants.py',
]
model = dict(distiller={{_base_.no_triplet}})
