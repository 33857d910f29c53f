# The pair of _base_ with boundary samples from the online attack (BSS's
# step, on the augmented batch) instead of the bank.
_base_ = ['./wrn_40_2_shufflenetv1_cifar100.py']
model = dict(bank=None)
train_dataloader = dict(dataset=dict(pipeline={{_base_.train_pipeline}}))
