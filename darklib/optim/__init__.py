"""darklib.optim: optimizers (SGD, Adam, AdamW, RMSprop, Adafactor, Muon...) and lr schedulers.

>>> opt = dl.optim.Adam(model.parameters(), lr=1e-3)
>>> sched = dl.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
"""

from darklib.optim import lr_scheduler, swa_utils
from darklib.optim.adafactor import Adafactor
from darklib.optim.adagrad import Adadelta, Adagrad
from darklib.optim.adam import Adam, AdamW
from darklib.optim.adam_variants import Adamax, NAdam, RAdam
from darklib.optim.asgd import ASGD
from darklib.optim.lbfgs import LBFGS
from darklib.optim.muon import Muon
from darklib.optim.optimizer import Optimizer
from darklib.optim.rmsprop import RMSprop
from darklib.optim.rprop import Rprop
from darklib.optim.sgd import SGD

__all__ = [
    "ASGD",
    "LBFGS",
    "SGD",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Muon",
    "NAdam",
    "Optimizer",
    "RAdam",
    "RMSprop",
    "Rprop",
    "lr_scheduler",
]
