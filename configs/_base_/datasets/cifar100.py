# CIFAR-100 for the KD benchmark, read offline from the official
# python-pickle archive extracted into data_root:
#   data/cifar100/cifar-100-python/{train,test,meta}
# Types carry the `mmpretrain.` scope so the config also builds from
# MMRazor configs (default_scope='mmrazor', whose registries do not fall
# back to MMPretrain's). Importing `amkd_plugin.datasets` registers
# OfflineCIFAR100; the top-level config's custom_imports must include it.
dataset_type = 'mmpretrain.OfflineCIFAR100'
data_preprocessor = dict(
    type='mmpretrain.ClsDataPreprocessor',
    num_classes=100,
    # The CIFAR-100 RGB statistics of the KD benchmark (CRD/RepDistiller:
    # mean 0.5071/0.4867/0.4408, std 0.2675/0.2565/0.2761) times 255.
    mean=[129.3105, 124.1085, 112.404],
    std=[68.2125, 65.4075, 70.4055],
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
    # Workers made anew each epoch draw augmentations seeded by (seed,
    # epoch, rank, worker) (RandomStateHook), so --resume continues the run.
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root='data/cifar100',
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
        data_root='data/cifar100',
        split='test',
        pipeline=test_pipeline),
)
val_evaluator = dict(type='mmpretrain.Accuracy', topk=(1, 5))

test_dataloader = val_dataloader
test_evaluator = val_evaluator
