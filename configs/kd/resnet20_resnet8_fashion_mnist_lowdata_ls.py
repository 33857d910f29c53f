# Stock MMRazor KD on standardized logits (logit standardization, Sun et
# al. CVPR 2024) at AMKD's default tau 2, weight 9 and clipping.
_base_ = ['./resnet20_resnet8_fashion_mnist_lowdata.py']
model = dict(
    distiller=dict(
        connectors=dict(ls=dict(type='LogitStandardization')),
        distill_losses=dict(loss_kd=dict(tau=2, loss_weight=9)),
        loss_forward_mappings=dict(
            loss_kd=dict(
                preds_S=dict(connector='ls'), preds_T=dict(connector='ls')))))
optim_wrapper = dict(clip_grad=dict(max_norm=5))
