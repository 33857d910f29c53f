# CIFAR Wide ResNet (RepDistiller convention) for 100 classes; wrn_*.py in
# this folder override depth and widen_factor. A widen_factor k other than 2
# also needs head in_channels = 64 * k.
model = dict(
    type='ImageClassifier',
    _scope_='mmpretrain',  # MMRazor configs build this from its own scope
    backbone=dict(type='CIFARWideResNet', depth=16, widen_factor=2),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=100,
        in_channels=128,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
