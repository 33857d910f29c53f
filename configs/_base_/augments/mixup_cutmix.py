# Batch augments that mix images (MMPretrain's Mixup and CutMix, one of
# them per batch) at DeiT's settings as MMPretrain's configs have them: a
# mixin for `data_preprocessor.batch_augments`. The mixed labels are soft:
# a student's cross-entropy then needs `use_soft=True`.
batch_augments = dict(augments=[
    dict(type='Mixup', alpha=0.8),
    dict(type='CutMix', alpha=1.0)
])
