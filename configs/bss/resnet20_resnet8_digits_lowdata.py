# The BSS baseline of the low-data digits proxy.
_base_ = ['../amkd/resnet20_resnet8_digits_lowdata_no_ls_online.py']
model = dict(
    distiller=dict(distill_losses=dict(loss_triplet=dict(loss_weight=0.))))
