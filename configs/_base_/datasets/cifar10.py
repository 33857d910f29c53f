# CIFAR-10 for the KD benchmark, read offline from the official
# python-pickle archive extracted into data_root:
#   data/cifar10/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}
# Types carry the `mmpretrain.` scope so the config also builds from
# MMRazor configs (default_scope='mmrazor', whose registries do not fall
# back to MMPretrain's). Importing `amkd_plugin.datasets` registers
# OfflineCIFAR10; the top-level config's custom_imports must include it.
dataset_type = 'mmpretrain.OfflineCIFAR10'
data_preprocessor = dict(
    type='mmpretrain.ClsDataPreprocessor',
    num_classes=10,
    # The common CIFAR-10 RGB statistics (0.4914/0.4822/0.4465 +-
    # 0.2023/0.1994/0.2010) in 0..255 scale, as in MMPretrain's config.
    mean=[125.307, 122.961, 113.8575],
    std=[51.5865, 50.847, 51.255],
    # CIFAR arrays are already RGB.
    to_rgb=False)

train_pipeline = [
    dict(type='mmpretrain.RandomCrop', crop_size=32, padding=4),
    dict(type='mmpretrain.RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='mmpretrain.PackInputs'),
]

test_pipeline = [
    dict(type='mmpretrain.PackInputs'),
]

train_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root='data/cifar10',
        split='train',
        pipeline=train_pipeline),
)

val_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root='data/cifar10',
        split='test',
        pipeline=test_pipeline),
)
val_evaluator = dict(type='mmpretrain.Accuracy', topk=(1, 5))

test_dataloader = val_dataloader
test_evaluator = val_evaluator
