# The pair of _base_ with boundary samples from the online attack (BSS's
# step, on the augmented batch) instead of the bank.
_base_ = ['./resnet20_resnet8_digits_lowdata.py']
model = dict(bank=None)
train_dataloader = dict(dataset=dict(pipeline={{_base_.train_pipeline}}))
