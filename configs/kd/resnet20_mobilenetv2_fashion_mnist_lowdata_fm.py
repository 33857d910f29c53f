# Function-matching KD (configs/kd/resnet20_resnet8_fashion_mnist_lowdata_
# fm.py) with the MobileNetV2 student.
_base_ = [
    './resnet20_mobilenetv2_fashion_mnist_lowdata.py',
    '../_base_/augments/mixup_cutmix.py'
]
data_preprocessor = dict(batch_augments={{_base_.batch_augments}})
model = dict(architecture=dict(head=dict(loss=dict(use_soft=True))))
