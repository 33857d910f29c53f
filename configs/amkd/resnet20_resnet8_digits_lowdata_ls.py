# The AMKD default of _base_ with logit standardization on its clean and
# boundary KD losses (configs/_base_/distill/logit_standardization.py).
_base_ = [
    './resnet20_resnet8_digits_lowdata.py',
    '../_base_/distill/logit_standardization.py',
]
model = dict(distiller={{_base_.standardized_kd}})
optim_wrapper = {{_base_.clipped}}
