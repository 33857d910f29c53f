# KD with logit standardization (Sun et al., CVPR 2024): the default AMKD
# student of this pair, online, with the boundary weight held at 0, so its
# clean KD on standardized logits and the task loss train (plain KD:
# ./resnet20_resnet8_digits_lowdata.py).
_base_ = ['../amkd/resnet20_resnet8_digits_lowdata_online.py']
custom_hooks = [dict(type='AdversarialBoundaryHook', scale=0.)]
