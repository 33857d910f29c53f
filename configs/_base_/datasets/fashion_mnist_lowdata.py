# The low-data Fashion-MNIST regime: a stratified, seeded 5% of the
# training split (300 images per class, the same for every run seed) and
# the whole test split.
_base_ = ['./fashion_mnist.py']
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='mmpretrain.StratifiedSubset',
        fraction=0.05,
        seed=0,
        dataset={{_base_.train_dataloader.dataset}}))
