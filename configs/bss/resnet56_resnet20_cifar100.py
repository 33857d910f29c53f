# The BSS baseline: the AMKD flagship without the triplet metric loss.
_base_ = ['../amkd/resnet56_resnet20_cifar100.py']
model = dict(
    distiller=dict(distill_losses=dict(loss_triplet=dict(loss_weight=0.))))
