"""Training the world models: class-conditional BigGAN and BigGAN-deep generators on the toy
world (``experiments/train_world_models.py``).

* :mod:`.spectral` - spectral normalisation during training (power iteration, folding);
* :mod:`.discriminator` - a BigGAN-style projection discriminator;
* :mod:`.init` - host-side (NumPy) parameter initialisation;
* :mod:`.standing` - standing statistics at the family's truncation rows;
* :mod:`.trainer` - the hinge-loss GAN step, EMA, checkpoint/resume, :func:`train`;
* :mod:`.extent` - the extent term: a regressor of object area trained on real renders'
  ground truth, and the target that ties the first latent coordinate to the size;
* :mod:`.checkpoint` - atomic training checkpoints;
* :mod:`.evaluate` - classifier accuracy and per-class Frechet distance of samples.
"""

from jaxaware.train.trainer import TrainConfig, finalize, init_state, run_steps, train

__all__ = ["TrainConfig", "finalize", "init_state", "run_steps", "train"]
