"""speech-mel: a GateLoop language model over log-mel frames of spoken digits (continuous input).

    python -m glrnn.make_frames --source path/to/fsdd/recordings --out ~/frames/fsdd-mel
    python train_lm.py speech-mel --data.source ~/frames/fsdd-mel
    python generate.py --run runs/latest --frames 100 --frames-out digit.npy   # + digit.png

The frames are 40 natural-log mel energies every 10 ms (32 ms windows at 8 kHz), one .npy per
recording (the Free Spoken Digit Dataset: 0.3-1.3 s clips, about 44 frames each); each file is
one document, split by a hash of its name, and normalised per band by the training split's mean
and std. The next frame is a mixture of 8 diagonal Gaussians (glrnn/density.py), trained by
its exact NLL; windows of 128 frames hold about three recordings, each opened by the learned
start vector and cut off from the others' state.
"""

from glrnn.config import (
    Config,
    DataConfig,
    GateLoopConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
)

CONFIG = Config(
    model=ModelConfig(input="continuous", frame_width=40, frame_head="gmm",
                      mixture_components=8, d_model=128, n_layers=3, mixer="gateloop",
                      d_state=128, gateloop=GateLoopConfig(f_min=0.5, f_max=0.99)),
    data=DataConfig(source="fsdd-mel", seq_len=128, batch_size=16, val_fraction=0.1,
                    val_windows=64),
    optim=OptimConfig(lr=2e-3, warmup_steps=50, min_lr_ratio=0.1, weight_decay=0.1),
    train=TrainConfig(steps=300, eval_every=100, log_every=10, checkpoint_every=100),
)
