_base_ = './cifar_wrn.py'

model = dict(backbone=dict(depth=40, widen_factor=2))
