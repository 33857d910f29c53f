# The BSS baseline of the low-data digits proxy.
_base_ = [
    '../amkd/resnet20_resnet8_digits_lowdata.py',
    '../_base_/distill/raw_logits.py'
]
model = dict(
    distiller={{_base_.bss_kd}},
    boundary=dict(type='OnlineBoundary', attack={{_base_.bss_attack}}))
optim_wrapper = {{_base_.unclipped}}
