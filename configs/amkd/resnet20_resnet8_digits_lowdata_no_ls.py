# The pair of _base_ without logit standardization: clean and boundary KD
# on the raw logits (configs/_base_/distill/raw_logits.py), as the default
# was before the ablation of docs/results.md#the-metric-term; the base of
# that ablation's rows without LS (resnet20_resnet8_digits_lowdata_no_ls_*.py).
_base_ = [
    './resnet20_resnet8_digits_lowdata.py',
    '../_base_/distill/raw_logits.py',
]
model = dict(distiller={{_base_.raw_kd}})
optim_wrapper = {{_base_.unclipped}}
