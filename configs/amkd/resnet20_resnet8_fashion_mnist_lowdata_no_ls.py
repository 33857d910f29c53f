# The pair of _base_ without logit standardization: clean and boundary KD
# on the raw logits at the KD benchmark's tau 4 and weight 0.9
# (configs/_base_/distill/raw_logits.py), no gradient clipping.
_base_ = [
    './resnet20_resnet8_fashion_mnist_lowdata.py',
    '../_base_/distill/raw_logits.py',
]
model = dict(distiller={{_base_.raw_kd}})
optim_wrapper = {{_base_.unclipped}}
