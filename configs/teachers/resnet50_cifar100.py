_base_ = [
    '../_base_/models/resnet50.py', '../_base_/datasets/cifar100.py',
    '../_base_/schedules/cifar_kd_240e.py', '../_base_/default_runtime.py'
]
