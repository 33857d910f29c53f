# The BSS baseline (Heo et al., AAAI 2019): boundary samples made online
# with BSS's step and the boundary KD loss on the raw logits, without the
# triplet metric loss or logit standardization.
_base_ = [
    '../amkd/resnet56_resnet20_cifar100.py',
    '../_base_/distill/raw_logits.py'
]
model = dict(
    distiller={{_base_.bss_kd}},
    boundary=dict(type='OnlineBoundary', attack={{_base_.bss_attack}}))
optim_wrapper = {{_base_.unclipped}}
