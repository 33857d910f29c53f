# The low-data proxy's teacher: ResNet20 on 20% of the digits training
# split.
_base_ = [
    '../_base_/models/resnet20.py', '../_base_/datasets/digits_lowdata.py',
    '../_base_/schedules/digits_lowdata_60e.py', '../_base_/default_runtime.py'
]
model = dict(head=dict(num_classes=10))
default_hooks = dict(logger=dict(interval=10))
