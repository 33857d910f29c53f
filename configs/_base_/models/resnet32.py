_base_ = './cifar_resnet.py'

model = dict(backbone=dict(depth=32))
