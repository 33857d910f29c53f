# The demo teacher: ResNet20 on the embedded scikit-learn digits.
_base_ = [
    '../_base_/models/resnet20.py', '../_base_/datasets/digits.py',
    '../_base_/schedules/digits_20e.py', '../_base_/default_runtime.py'
]
model = dict(head=dict(num_classes=10))
default_hooks = dict(logger=dict(interval=10))
