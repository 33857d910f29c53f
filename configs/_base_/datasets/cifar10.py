# CIFAR-10 for the KD benchmark: the CIFAR-100 settings (augmentation,
# batch, loaders) on CIFAR-10, read offline from the official python-pickle
# archive extracted into data_root:
#   data/cifar10/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}
_base_ = ['./cifar100.py']

dataset_type = 'mmpretrain.OfflineCIFAR10'
data_preprocessor = dict(
    num_classes=10,
    # The common CIFAR-10 RGB statistics (0.4914/0.4822/0.4465 +-
    # 0.2023/0.1994/0.2010) in 0..255 scale, as in MMPretrain's config.
    mean=[125.307, 122.961, 113.8575],
    std=[51.5865, 50.847, 51.255])

train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root='data/cifar10'))
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root='data/cifar10'))
test_dataloader = val_dataloader
