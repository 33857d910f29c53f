# The ResNet8 student trained alone on the low-data Fashion-MNIST regime
# (the reference every distillation row is measured against).
_base_ = [
    '../_base_/models/resnet8.py',
    '../_base_/datasets/fashion_mnist_lowdata.py',
    '../_base_/schedules/fashion_mnist_lowdata_240e.py',
    '../_base_/default_runtime.py'
]
model = dict(backbone=dict(in_channels=1), head=dict(num_classes=10))
