# One first-order step from each banked sample in the step, from where the
# augmentation left it.
model = dict(
    boundary=dict(
        refine=dict(
            step='newton', max_steps=1, overshoot=0.1, max_step_rms=0.5)))
