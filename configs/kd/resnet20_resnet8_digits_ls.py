# KD with logit standardization (Sun et al., CVPR 2024): the pair's AMKD
# with the boundary weight held at 0, so its clean KD on standardized
# logits and the task loss train (plain KD: ./resnet20_resnet8_digits.py).
_base_ = ['../amkd/resnet20_resnet8_digits.py']
# Weight 0 makes no boundary samples: nothing to bank.
model = dict(boundary=dict(type='OnlineBoundary'))
custom_hooks = [dict(type='AdversarialBoundaryHook', scale=0.)]
