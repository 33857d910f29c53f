# The BSS baseline (Heo et al., AAAI 2019): the online attack with BSS's
# step and the boundary KD loss on the raw logits, without the triplet
# metric loss or logit standardization.
_base_ = ['../amkd/resnet56_resnet20_cifar100_no_ls_online.py']
model = dict(
    distiller=dict(distill_losses=dict(loss_triplet=dict(loss_weight=0.))))
