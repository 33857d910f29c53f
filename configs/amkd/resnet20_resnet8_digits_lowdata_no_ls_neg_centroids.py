# AMKD without LS (_base_) with the teacher's class centroids in the batch as
# negatives (configs/_base_/distill/metric_variants.py).
_base_ = [
    './resnet20_resnet8_digits_lowdata_no_ls.py',
    '../_base_/distill/metric_variants.py',
]
model = dict(distiller={{_base_.centroid_negatives}})
