# KD with logit standardization on the low-data digits proxy (see
# ./resnet20_resnet8_digits_ls.py).
_base_ = ['../amkd/resnet20_resnet8_digits_lowdata.py']
model = dict(boundary=dict(type='OnlineBoundary'))
custom_hooks = [dict(type='AdversarialBoundaryHook', scale=0.)]
