# KD on the raw logits (temperature 4, KD weight 0.9, no gradient
# clipping), as the KD benchmark and BSS have it, instead of the AMKD
# default's standardized logits.
_base_ = ['../../_base_/distill/raw_logits.py']
model = dict(distiller={{_base_.raw_kd}})
optim_wrapper = {{_base_.unclipped}}
