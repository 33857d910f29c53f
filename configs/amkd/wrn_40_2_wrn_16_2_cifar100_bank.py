# As wrn_40_2_wrn_16_2_cifar100.py, with boundary samples from a bank
# built once before training instead of the online attack.
_base_ = ['./wrn_40_2_wrn_16_2_cifar100.py']
model = dict(bank=dict(type='BoundaryBankBuilder'))
train_dataloader = dict(dataset=dict(pipeline={{_base_.bank_train_pipeline}}))
