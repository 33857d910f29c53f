# The BSS baseline (Heo et al., AAAI 2019): the online attack with BSS's
# step and the boundary KD loss, without the triplet metric loss.
_base_ = ['../amkd/resnet56_resnet20_cifar100_online.py']
model = dict(
    distiller=dict(distill_losses=dict(loss_triplet=dict(loss_weight=0.))))
