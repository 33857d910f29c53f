# The second teacher family of the Fashion-MNIST benchmark: WRN-16-2 on
# the 60,000 training images, with the ResNet20 teacher's recipe.
_base_ = [
    '../_base_/models/wrn_16_2.py', '../_base_/datasets/fashion_mnist.py',
    '../_base_/schedules/fashion_mnist_6e.py', '../_base_/default_runtime.py'
]
model = dict(backbone=dict(in_channels=1), head=dict(num_classes=10))
default_hooks = dict(checkpoint=dict(interval=1))
