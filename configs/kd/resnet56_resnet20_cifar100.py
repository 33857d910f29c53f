# The KD baseline: the AMKD flagship with the boundary weight held at 0, so
# the attack never runs and only the clean KD and task losses train.
_base_ = ['../amkd/resnet56_resnet20_cifar100.py']
custom_hooks = [dict(type='AdversarialBoundaryHook', scale=0.)]
