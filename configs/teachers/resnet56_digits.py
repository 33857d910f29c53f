# The demo teacher: ResNet56 on the embedded scikit-learn digits.
_base_ = [
    '../_base_/models/resnet56.py', '../_base_/datasets/digits.py',
    '../_base_/schedules/digits_30e.py', '../_base_/default_runtime.py'
]
model = dict(head=dict(num_classes=10))
default_hooks = dict(logger=dict(interval=10))
