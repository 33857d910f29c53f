# The online attack with the first-order step instead of BSS's: boundary
# samples in about two teacher passes instead of nine, at most three
# (docs/method.md#boundary-samples-boundaryattack).
_base_ = ['./resnet20_resnet8_digits_no_ls_online.py']
model = dict(
    attack=dict(step='newton', max_steps=3, overshoot=0.1, max_step_rms=0.5))
