# The MobileNetV2 student trained alone on the low-data Fashion-MNIST
# regime: the second student family's reference.
_base_ = [
    '../_base_/models/mobilenetv2_grey.py',
    '../_base_/datasets/fashion_mnist_lowdata.py',
    '../_base_/schedules/fashion_mnist_lowdata_240e.py',
    '../_base_/default_runtime.py'
]
# MobileNetV2 students train at lr 0.01, as the KD benchmark's.
optim_wrapper = dict(optimizer=dict(lr=0.01))
