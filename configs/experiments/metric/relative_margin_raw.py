# A form of AMKD's metric term (docs/results.md#the-metric-term), from
# configs/_base_/distill/metric_variants.py.
_base_ = ['../../_base_/distill/metric_variants.py']
model = dict(distiller={{_base_.relative_margin_raw}})
