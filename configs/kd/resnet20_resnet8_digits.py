# The KD baseline of the digits demo (see kd/resnet56_resnet20_cifar100.py).
_base_ = ['../amkd/resnet20_resnet8_digits_no_ls_online.py']
custom_hooks = [dict(type='AdversarialBoundaryHook', scale=0.)]
