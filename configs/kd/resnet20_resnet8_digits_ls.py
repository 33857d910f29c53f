# KD with logit standardization (Sun et al., CVPR 2024): the KD baseline of
# _base_ with it (configs/_base_/distill/logit_standardization.py).
_base_ = [
    './resnet20_resnet8_digits.py',
    '../_base_/distill/logit_standardization.py',
]
model = dict(distiller={{_base_.standardized_kd}})
optim_wrapper = {{_base_.clipped}}
