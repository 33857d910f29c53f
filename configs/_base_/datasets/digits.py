# scikit-learn's embedded 8x8 handwritten digits served as 32x32 RGB
# images (see amkd_plugin.datasets.SklearnDigits): real data that needs no
# files and no network, for offline smoke tests and small experiments.
# Types carry the `mmpretrain.` scope so the config also builds from
# MMRazor configs (default_scope='mmrazor'). Importing
# `amkd_plugin.datasets` registers SklearnDigits; the top-level config's
# custom_imports must include it.
dataset_type = 'mmpretrain.SklearnDigits'
data_preprocessor = dict(
    type='mmpretrain.ClsDataPreprocessor',
    num_classes=10,
    # Mean and (population) std over all pixels of the 1,347 training
    # images (split='train', test_size=0.25, seed=0) after conversion to
    # 32x32x3 uint8, computed with numpy float64; the three channels are
    # identical grey copies.
    mean=[77.825, 77.825, 77.825],
    std=[82.506, 82.506, 82.506],
    to_rgb=False)

# No RandomFlip: digits are not mirror-symmetric (a flipped 2, 3, 4, 7 or
# 9 is not a valid digit), so flipping would corrupt labels.
train_pipeline = [
    dict(type='mmpretrain.RandomCrop', crop_size=32, padding=4),
    dict(type='mmpretrain.PackInputs'),
]

test_pipeline = [
    dict(type='mmpretrain.PackInputs'),
]

# The whole dataset is a few MB in memory; worker processes would only add
# start-up time.
train_dataloader = dict(
    batch_size=64,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, split='train', pipeline=train_pipeline),
)

val_dataloader = dict(
    batch_size=64,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, split='test', pipeline=test_pipeline),
)
val_evaluator = dict(type='mmpretrain.Accuracy', topk=(1, 5))

test_dataloader = val_dataloader
test_evaluator = val_evaluator
