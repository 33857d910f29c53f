# The digits bank without LS (_base_) built with BSS's step (10 steps of
# 0.3) instead of the first-order one: banked samples a few steps short of
# the boundary.
_base_ = ['./resnet20_resnet8_digits_no_ls.py']
model = dict(bank=dict(attack=dict(_delete_=True, type='BoundaryAttack')))
