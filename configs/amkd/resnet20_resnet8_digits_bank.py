# The digits AMKD student with boundary samples from a bank built once
# before training instead of the online attack (docs/method.md).
_base_ = ['./resnet20_resnet8_digits.py']
model = dict(bank=dict(type='BoundaryBankBuilder'))
train_dataloader = dict(dataset=dict(pipeline={{_base_.bank_train_pipeline}}))
