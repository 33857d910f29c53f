# The flagship without logit standardization: clean and boundary KD on the
# raw logits at the KD benchmark's temperature 4 and weight 0.9
# (configs/_base_/distill/raw_logits.py), no gradient clipping.
_base_ = [
    './resnet56_resnet20_cifar100.py',
    '../_base_/distill/raw_logits.py',
]
model = dict(distiller={{_base_.raw_kd}})
optim_wrapper = {{_base_.unclipped}}
