# The KD baseline of the digits demo: the pair's AMKD on raw logits (KD
# benchmark's tau 4, weight 0.9) with the boundary weight held at 0, so no
# boundary sample is made and only the clean KD and task losses train;
# the same losses as stock MMRazor KD, kept in this form because the
# digits tables of docs/results.md were measured with it.
_base_ = [
    '../amkd/resnet20_resnet8_digits.py', '../_base_/distill/raw_logits.py'
]
model = dict(
    distiller={{_base_.raw_kd}},
    # Weight 0 makes no boundary samples: nothing to bank.
    boundary=dict(type='OnlineBoundary'))
optim_wrapper = {{_base_.unclipped}}
custom_hooks = [dict(type='AdversarialBoundaryHook', scale=0.)]
