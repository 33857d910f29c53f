# The pair of _base_ (no logit standardization) with boundary samples from
# the online attack (BSS's step, on the augmented batch) instead of the
# bank; the base of the KD and BSS baselines.
_base_ = ['./resnet56_resnet20_cifar100_no_ls.py']
model = dict(bank=None)
train_dataloader = dict(dataset=dict(pipeline={{_base_.train_pipeline}}))
