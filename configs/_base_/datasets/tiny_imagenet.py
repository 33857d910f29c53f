# Tiny ImageNet (200 classes, 64x64) read from the extracted original
# archive: data/tiny-imagenet-200/{wnids.txt,words.txt,train,val}.
# Types carry the `mmpretrain.` scope so the config also builds from
# MMRazor configs (default_scope='mmrazor'). Importing
# `amkd_plugin.datasets` registers TinyImageNet; the top-level config's
# custom_imports must include it.
dataset_type = 'mmpretrain.TinyImageNet'
data_preprocessor = dict(
    type='mmpretrain.ClsDataPreprocessor',
    num_classes=200,
    # ImageNet RGB statistics in 0..255 scale.
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    # LoadImageFromFile decodes to BGR; convert to match the RGB statistics.
    to_rgb=True)

# RandomCrop 64 with padding 8 is the CIFAR recipe scaled to 64 px (same
# 1/8 padding ratio): objects keep their scale, unlike RandomResizedCrop,
# whose aggressive zoom hurts at this low resolution.
train_pipeline = [
    dict(type='mmpretrain.LoadImageFromFile'),
    dict(type='mmpretrain.RandomCrop', crop_size=64, padding=8),
    dict(type='mmpretrain.RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='mmpretrain.PackInputs'),
]

test_pipeline = [
    dict(type='mmpretrain.LoadImageFromFile'),
    dict(type='mmpretrain.PackInputs'),
]

train_dataloader = dict(
    # 128, the batch the Tiny ImageNet schedule's lr 0.1 is set for.
    batch_size=128,
    num_workers=2,
    # Workers made anew each epoch draw augmentations seeded by (seed,
    # epoch, rank, worker) (RandomStateHook), so --resume continues the run.
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root='data/tiny-imagenet-200',
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
        data_root='data/tiny-imagenet-200',
        split='val',
        pipeline=test_pipeline),
)
val_evaluator = dict(type='mmpretrain.Accuracy', topk=(1, 5))

test_dataloader = val_dataloader
test_evaluator = val_evaluator
