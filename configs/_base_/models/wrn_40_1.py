_base_ = './cifar_wrn.py'

model = dict(
    backbone=dict(depth=40, widen_factor=1), head=dict(in_channels=64))
