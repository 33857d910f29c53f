# As resnet110_resnet32_cifar100.py, with boundary samples from a bank
# built once before training instead of the online attack.
_base_ = ['./resnet110_resnet32_cifar100.py']
model = dict(bank=dict(type='BoundaryBankBuilder'))
train_dataloader = dict(dataset=dict(pipeline={{_base_.bank_train_pipeline}}))
