# The KD baseline (Hinton et al.; the KD benchmark's tau 4, weight 0.9):
# the flagship without logit standardization, with the boundary weight
# held at 0, so no boundary sample is made (online config: no bank to
# build) and only the clean KD and task losses train.
_base_ = ['../amkd/resnet56_resnet20_cifar100_no_ls_online.py']
custom_hooks = [dict(type='AdversarialBoundaryHook', scale=0.)]
