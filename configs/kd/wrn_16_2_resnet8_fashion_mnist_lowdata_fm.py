# Function-matching KD (configs/kd/resnet20_resnet8_fashion_mnist_lowdata_
# fm.py) with the WRN-16-2 teacher.
_base_ = [
    './wrn_16_2_resnet8_fashion_mnist_lowdata.py',
    '../_base_/augments/mixup_cutmix.py'
]
data_preprocessor = dict(batch_augments={{_base_.batch_augments}})
model = dict(architecture=dict(head=dict(loss=dict(use_soft=True))))
