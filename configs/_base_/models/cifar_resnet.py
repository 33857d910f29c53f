# CIFAR ResNet (RepDistiller convention) for 100 classes; the per-depth
# configs in this folder override `depth`, and the x4 variants the widths.
model = dict(
    type='ImageClassifier',
    _scope_='mmpretrain',  # MMRazor configs build this from its own scope
    backbone=dict(type='CIFARResNet', depth=20),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=100,
        in_channels=64,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
