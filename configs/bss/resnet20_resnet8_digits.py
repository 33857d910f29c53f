# The BSS baseline of the digits demo (see bss/resnet56_resnet20_cifar100.py).
_base_ = ['../amkd/resnet20_resnet8_digits_no_ls_online.py']
model = dict(
    distiller=dict(distill_losses=dict(loss_triplet=dict(loss_weight=0.))))
