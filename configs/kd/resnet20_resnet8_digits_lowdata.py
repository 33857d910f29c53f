# The KD baseline of the low-data digits proxy.
_base_ = ['../amkd/resnet20_resnet8_digits_lowdata_no_ls_online.py']
custom_hooks = [dict(type='AdversarialBoundaryHook', scale=0.)]
