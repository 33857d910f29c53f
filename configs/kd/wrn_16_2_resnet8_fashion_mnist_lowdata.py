# Stock MMRazor KD on the low-data Fashion-MNIST regime with the second
# teacher family: configs/teachers/wrn_16_2_fashion_mnist.py's network,
# the ResNet8 student.
_base_ = ['./resnet20_resnet8_fashion_mnist_lowdata.py']
model = dict(
    teacher=dict(
        _delete_=True,
        type='ImageClassifier',
        _scope_='mmpretrain',
        backbone=dict(
            type='CIFARWideResNet', depth=16, widen_factor=2, in_channels=1),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=10,
            in_channels=128,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0))),
    teacher_ckpt='work_dirs/wrn_16_2_fashion_mnist/epoch_6.pth')
