# Stock MMRazor KD (Hinton et al.), ResNet56 -> ResNet20 on CIFAR-100
# (configs/_base_/distill/kd.py).
_base_ = [
    '../_base_/distill/kd.py', '../_base_/datasets/cifar100.py',
    '../_base_/schedules/cifar_kd_240e.py'
]


def _cifar_resnet(depth, loss_weight=1.0):
    return dict(
        type='ImageClassifier',
        _scope_='mmpretrain',  # its parts build in MMPretrain's scope
        backbone=dict(type='CIFARResNet', depth=depth),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=100,
            in_channels=64,
            loss=dict(type='CrossEntropyLoss', loss_weight=loss_weight)))


model = dict(
    # configs/_base_/models/resnet20.py's network.
    architecture=_cifar_resnet(20, loss_weight=0.1),
    # configs/teachers/resnet56_cifar100.py's network.
    teacher=_cifar_resnet(56),
    teacher_ckpt='work_dirs/resnet56_cifar100/epoch_240.pth')
