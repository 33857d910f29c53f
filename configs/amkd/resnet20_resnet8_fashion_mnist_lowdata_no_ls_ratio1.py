# The pair without logit standardization (_base_), giving every image both
# models get right a boundary sample (max_ratio 1 instead of 0.25).
_base_ = ['./resnet20_resnet8_fashion_mnist_lowdata_no_ls.py']
model = dict(attack=dict(max_ratio=1.0))
