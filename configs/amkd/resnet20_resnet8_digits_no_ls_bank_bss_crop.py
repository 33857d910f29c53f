# The BSS-step bank with each boundary image given its clean image's random
# crop, as the clean pass sees it; the crop moves it off the teacher's
# boundary (docs/method.md#boundary-bank-boundarybankbuilder).
_base_ = ['./resnet20_resnet8_digits_no_ls_bank_bss.py']
train_dataloader = dict(
    dataset=dict(pipeline={{_base_.bank_crop_train_pipeline}}))
