# Runtime shared by every config: MMPretrain scope, the plugin imported,
# MMPretrain types prefixed so MMRazor-scope configs inherit it unchanged;
# logging, checkpointing and seeding.
default_scope = 'mmpretrain'
custom_imports = dict(imports=['amkd_plugin'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Keep the last three epochs to resume from and the best one to deploy.
    # Written to a temporary name and renamed (AtomicLocalBackend), so a
    # kill while saving never leaves a truncated newest checkpoint.
    checkpoint=dict(
        type='CheckpointHook', interval=10, max_keep_ckpts=3,
        save_best='auto', backend_args=dict(backend='atomic_local')),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='mmpretrain.VisualizationHook', enable=False),
    # A resumed run draws the random numbers the uninterrupted one drew.
    random_state=dict(type='RandomStateHook'),
    # Stop at the first NaN/Inf loss instead of training on NaN weights.
    non_finite_loss=dict(type='NonFiniteLossHook'),
    # On SIGTERM/SIGINT: finish the iteration, save it, stop (resumable).
    preemption=dict(type='PreemptionHook'),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='mmpretrain.UniversalVisualizer', vis_backends=vis_backends)

log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
