_base_ = [
    '../_base_/models/resnet56.py', '../_base_/datasets/tiny_imagenet.py',
    '../_base_/schedules/tiny_imagenet_200e.py',
    '../_base_/default_runtime.py'
]
model = dict(head=dict(num_classes=200))
