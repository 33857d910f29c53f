_base_ = './vgg8.py'

model = dict(backbone=dict(depth=13))
