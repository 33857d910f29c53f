# Stock MMRazor KD on the low-data Fashion-MNIST regime with the second
# student family: the ResNet20 teacher, a MobileNetV2 student
# (configs/_base_/models/mobilenetv2_grey.py's network, its cross-entropy
# at 0.1 as the pair's ResNet8).
_base_ = ['./resnet20_resnet8_fashion_mnist_lowdata.py']
model = dict(
    architecture=dict(
        _delete_=True,
        type='ImageClassifier',
        _scope_='mmpretrain',
        backbone=dict(
            type='CIFARMobileNetV2',
            widen_factor=0.5,
            expand_ratio=6,
            in_channels=1),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=10,
            in_channels=1280,
            loss=dict(type='CrossEntropyLoss', loss_weight=0.1))))
# MobileNetV2 students train at lr 0.01, as the KD benchmark's.
optim_wrapper = dict(optimizer=dict(lr=0.01))
