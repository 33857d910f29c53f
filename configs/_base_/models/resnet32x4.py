_base_ = './cifar_resnet.py'

model = dict(
    backbone=dict(depth=32, widths=(32, 64, 128, 256)),
    head=dict(in_channels=256))
