# The KD baseline: the flagship with the boundary weight held at 0, so no
# boundary sample is made (online config: no bank to build) and only the
# clean KD and task losses train.
_base_ = ['../amkd/resnet56_resnet20_cifar100_online.py']
custom_hooks = [dict(type='AdversarialBoundaryHook', scale=0.)]
