# RepDistiller's vgg8 (vgg8_bn) for 100 classes.
model = dict(
    type='ImageClassifier',
    _scope_='mmpretrain',  # MMRazor configs build this from its own scope
    backbone=dict(type='CIFARVGG', depth=8),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=100,
        in_channels=512,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
