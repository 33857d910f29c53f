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

# AMKD's boundary bank (docs/method.md#boundary-bank-boundarybankbuilder).
# The banked boundary image exactly as the attack left it, next to the
# augmented clean image: a crop would move it off the teacher's boundary.
# With it, the teacher's logits on it as banked: the training step then
# needs no teacher pass on boundary samples.
bank_train_pipeline = [
    dict(type='mmpretrain.LoadBoundaryBank'),
    dict(type='mmpretrain.RandomCrop', crop_size=32, padding=4),
    dict(
        type='mmpretrain.PackInputs',
        algorithm_keys=[
            'boundary_img', 'boundary_target', 'boundary_correct',
            'boundary_reached', 'boundary_logits'
        ]),
]

# The banked boundary image with the clean image's random crop.
bank_crop_train_pipeline = [
    dict(type='mmpretrain.LoadBoundaryBank'),
    dict(
        # mmcv's, found via MMEngine's root registry from any scope.
        type='TransformBroadcaster',
        mapping={'img': ['img', 'boundary_img']},
        auto_remap=True,
        share_random_params=True,
        transforms=[
            dict(type='mmpretrain.RandomCrop', crop_size=32, padding=4),
        ]),
    dict(
        type='mmpretrain.PackInputs',
        algorithm_keys=[
            'boundary_img', 'boundary_target', 'boundary_correct',
            'boundary_reached'
        ]),
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
