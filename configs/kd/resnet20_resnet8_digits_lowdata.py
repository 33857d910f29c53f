# The KD baseline of the low-data digits proxy (see
# ./resnet20_resnet8_digits.py).
_base_ = [
    '../amkd/resnet20_resnet8_digits_lowdata.py',
    '../_base_/distill/raw_logits.py'
]
model = dict(distiller={{_base_.raw_kd}}, boundary=dict(type='OnlineBoundary'))
optim_wrapper = {{_base_.unclipped}}
custom_hooks = [dict(type='AdversarialBoundaryHook', scale=0.)]
