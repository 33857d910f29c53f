# Stock MMRazor KD (Hinton et al.) on the low-data Fashion-MNIST regime
# (configs/_base_/distill/kd.py).
_base_ = [
    '../_base_/distill/kd.py',
    '../_base_/datasets/fashion_mnist_lowdata.py',
    '../_base_/schedules/fashion_mnist_lowdata_240e.py'
]


def _cifar_resnet(depth, loss_weight=1.0):
    return dict(
        type='ImageClassifier',
        _scope_='mmpretrain',  # its parts build in MMPretrain's scope
        backbone=dict(type='CIFARResNet', depth=depth, in_channels=1),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=10,
            in_channels=64,
            loss=dict(type='CrossEntropyLoss', loss_weight=loss_weight)))


model = dict(
    # configs/students/resnet8_fashion_mnist_lowdata.py's network.
    architecture=_cifar_resnet(8, loss_weight=0.1),
    # configs/teachers/resnet20_fashion_mnist.py's network.
    teacher=_cifar_resnet(20),
    teacher_ckpt='results/fashion_mnist/teacher/resnet20_fashion_mnist.pth')
