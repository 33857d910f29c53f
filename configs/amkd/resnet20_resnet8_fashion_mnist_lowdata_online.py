# The Fashion-MNIST AMKD student with boundary samples from the online
# attack (BSS's step, on the augmented batch) instead of the bank.
_base_ = ['./resnet20_resnet8_fashion_mnist_lowdata.py']
model = dict(bank=None)
train_dataloader = dict(dataset=dict(
    dataset=dict(pipeline={{_base_.train_pipeline}})))
