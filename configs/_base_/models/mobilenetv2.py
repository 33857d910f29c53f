# RepDistiller's MobileNetV2 (mobile_half: width 0.5, T=6) for 100 classes.
# Its final 2x2 average pool on 32x32 inputs is the global average pool.
model = dict(
    type='ImageClassifier',
    _scope_='mmpretrain',  # MMRazor configs build this from its own scope
    backbone=dict(type='CIFARMobileNetV2', widen_factor=0.5, expand_ratio=6),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=100,
        in_channels=1280,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
