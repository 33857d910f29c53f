# The AMKD default of _base_ attacking online (the augmented batch, every
# step) with the first-order step instead of reading the bank.
_base_ = ['./resnet20_resnet8_fashion_mnist_lowdata.py']
model = dict(
    bank=None,
    attack=dict(step='newton', max_steps=3, overshoot=0.1, max_step_rms=0.5))
train_dataloader = dict(dataset=dict(
    dataset=dict(pipeline={{_base_.train_pipeline}})))
