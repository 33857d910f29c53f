# The AMKD default of _base_ giving every image both models get right a
# boundary sample (max_ratio 1 instead of 0.25).
_base_ = ['./resnet20_resnet8_fashion_mnist_lowdata.py']
model = dict(attack=dict(max_ratio=1.0))
