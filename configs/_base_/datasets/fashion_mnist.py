# Fashion-MNIST (Zalando): 60,000 training and 10,000 test images of 28x28
# grey product photos, 10 classes, read from the extracted IDX files in
# data/fashion-mnist (`bash scripts/get_data.sh fashion-mnist` puts them
# there). The images are 2-D uint8 arrays: the backbones take
# in_channels=1 (the pair configs set it). Types carry the `mmpretrain.`
# scope so the config also builds from MMRazor configs.
dataset_type = 'mmpretrain.OfflineFashionMNIST'
data_root = 'data/fashion-mnist'
data_preprocessor = dict(
    type='mmpretrain.ClsDataPreprocessor',
    num_classes=10,
    # Mean and (population) std over all pixels of the 60,000 training
    # images, numpy float64.
    mean=[72.940],
    std=[90.021],
    to_rgb=False)

# Clothes are left-right symmetric enough for flips (the usual
# Fashion-MNIST augmentation); crops shift by at most 2 of 28 pixels.
_augment = [
    dict(type='mmpretrain.RandomCrop', crop_size=28, padding=2),
    dict(type='mmpretrain.RandomFlip', prob=0.5, direction='horizontal'),
]
train_pipeline = [*_augment, dict(type='mmpretrain.PackInputs')]

test_pipeline = [dict(type='mmpretrain.PackInputs')]

# The arrays are in memory; worker processes would only add start-up time.
train_dataloader = dict(
    batch_size=64,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        pipeline=train_pipeline),
)

val_dataloader = dict(
    batch_size=256,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='test',
        pipeline=test_pipeline),
)
val_evaluator = dict(type='mmpretrain.Accuracy', topk=(1, ))

test_dataloader = val_dataloader
test_evaluator = val_evaluator
