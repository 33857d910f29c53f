# The cropped BSS-step bank refined by up to two first-order steps.
_base_ = ['./resnet20_resnet8_digits_no_ls_bank_bss_crop_refine1.py']
model = dict(bank=dict(refine=dict(max_steps=2)))
