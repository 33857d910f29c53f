# The digits bank built with the first-order (Newton) step: banked samples
# on the teacher's boundary rather than a few steps short of it.
_base_ = ['./resnet20_resnet8_digits_bank.py']
model = dict(
    bank=dict(
        attack=dict(
            type='BoundaryAttack',
            step='newton',
            max_steps=10,
            overshoot=0.1,
            max_step_rms=0.5)))
