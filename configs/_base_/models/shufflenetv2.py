# RepDistiller's ShuffleV2 (net_size 1) for 100 classes.
model = dict(
    type='ImageClassifier',
    _scope_='mmpretrain',  # MMRazor configs build this from its own scope
    backbone=dict(type='CIFARShuffleNetV2'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=100,
        in_channels=1024,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
