# The pair without logit standardization (_base_) with the boundary losses
# at a quarter of their weight: with max_ratio 0.25 a batch's boundary
# samples then weigh, per sample, what its clean images weigh (the losses
# are batch means), instead of the quarter of the batch weighing as much
# as the whole.
_base_ = ['./resnet20_resnet8_fashion_mnist_lowdata_no_ls.py']
custom_hooks = [
    dict(type='AdversarialBoundaryHook', schedule='linear', end=0.75,
         scale=0.25)
]
