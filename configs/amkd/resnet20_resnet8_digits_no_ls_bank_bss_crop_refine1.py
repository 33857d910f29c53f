# The cropped BSS-step bank, each boundary sample moved back toward the
# teacher's boundary by one first-order step after the crop.
_base_ = ['./resnet20_resnet8_digits_no_ls_bank_bss_crop.py']
model = dict(
    bank=dict(
        refine=dict(
            step='newton', max_steps=1, overshoot=0.1, max_step_rms=0.5)))
