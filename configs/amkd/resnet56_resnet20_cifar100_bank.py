# As resnet56_resnet20_cifar100.py, with boundary samples from a bank
# built once before training instead of the online attack.
_base_ = ['./resnet56_resnet20_cifar100.py']
model = dict(bank=dict(type='BoundaryBankBuilder'))
train_dataloader = dict(dataset=dict(pipeline={{_base_.bank_train_pipeline}}))
